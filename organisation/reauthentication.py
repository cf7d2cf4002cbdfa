"""Rule 6's re-authentication, kept apart from the directory backend so that the portal runs
without the optional LDAP packages installed."""

from django.conf import settings


def password_confirms(user, password: str) -> bool:
    """The password the signer types again is checked where their sign-in is checked. Local
    accounts against their hash; directory accounts (no local password) by binding to the
    directory, which also brings their team roles up to date at the moment of signing."""
    if user.has_usable_password():
        return user.check_password(password)
    if not getattr(settings, "AUTH_LDAP_SERVER_URI", ""):
        return False
    from organisation.ldap_backend import DirectoryBackend

    confirmed = DirectoryBackend().authenticate(
        None, username=user.get_username(), password=password
    )
    return confirmed is not None and confirmed.pk == user.pk
