"""Bearer tokens for service accounts, and the scope check that goes with them."""

import hashlib
import hmac

from rest_framework import authentication, exceptions, permissions

from portal.models import ServiceToken

TOKEN_PREFIX = "gh"  # noqa: S105  # nosec B105 - a label, not a secret


ASK_FOR_A_NEW_ONE = "ask an administrator for a new one (Admin → Service accounts)"
GRANT_SCOPE = (
    "Use a token that has it, or ask an administrator to grant it in Admin → Service accounts."
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> str | None:
    """The lookup prefix of a well-formed token `gh_<prefix>_<secret>`, or None."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        if keyword != self.keyword:
            return None
        token = token.strip()
        prefix = split_token(token)
        if prefix is None:
            raise exceptions.AuthenticationFailed(
                "Malformed bearer token: Gatehouse tokens look like gh_<prefix>_<secret>. Copy "
                f"it again whole, or {ASK_FOR_A_NEW_ONE}."
            )
        stored = (
            ServiceToken.objects.select_related("service_account", "service_account__team")
            .filter(prefix=prefix)
            .first()
        )
        # Compare in constant time, and spend the same work when the prefix is unknown.
        expected = stored.token_hash if stored else "0" * 64
        if not hmac.compare_digest(expected, hash_token(token)) or stored is None:
            raise exceptions.AuthenticationFailed(
                f"Invalid bearer token: Gatehouse knows no such token. Check the pipeline's "
                f"secret, or {ASK_FOR_A_NEW_ONE}."
            )
        if stored.is_revoked:
            raise exceptions.AuthenticationFailed(
                f"This token has been revoked and acts no more; {ASK_FOR_A_NEW_ONE}."
            )
        if not stored.service_account.is_active:
            raise exceptions.AuthenticationFailed(
                "This service account is disabled; an administrator re-enables it in Admin → "
                "Service accounts."
            )
        return stored.service_account, stored

    def authenticate_header(self, request):
        return f'{self.keyword} realm="gatehouse"'


def is_service_account(user) -> bool:
    return getattr(user, "is_service_account", False)


class TokenScopes(permissions.BasePermission):
    """Service accounts need the scope the view names for the method (`required_scopes`, a dict
    of method to scope, `"*"` for the rest). A method mapped to None is open to any token. People
    signed in with a session pass here; the views' own permissions judge them."""

    message = f"This token lacks the scope this endpoint needs. {GRANT_SCOPE}"

    def has_permission(self, request, view) -> bool:
        if not is_service_account(request.user):
            return True
        scopes = getattr(view, "required_scopes", {})
        needed = scopes.get(request.method, scopes.get("*"))
        if needed is None:
            return True
        self.message = f"This token lacks the '{needed}' scope this endpoint needs. {GRANT_SCOPE}"
        return request.user.has_scope(needed)


class IsPerson(permissions.BasePermission):
    """Endpoints for people only (a session), never for tokens."""

    message = (
        "This endpoint is for people signed in to the portal, not for tokens: a person does "
        "this in the browser."
    )

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and not is_service_account(
            request.user
        )
