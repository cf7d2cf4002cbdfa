"""The directory sign-in backend: django-auth-ldap, plus team memberships that follow the
directory groups named in `LDAP_TEAM_GROUPS` (see `portal/ldap_settings.py`)."""

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend

from organisation.services import memberships_follow_groups


class DirectoryBackend(LDAPBackend):
    """Signs people in against the directory. Where teams are mapped to groups, each sign-in
    brings the person's memberships in those teams in line with the groups they are in now
    (`memberships_follow_groups`): leaving the approvers' group in the directory takes the
    approver role away at the next sign-in. Teams not mapped are left to the admin."""

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        mapping = getattr(settings, "GATEHOUSE_LDAP_TEAM_GROUPS", [])
        if user is not None and mapping:
            memberships_follow_groups(user=user, groups=ldap_user.group_dns, mapping=mapping)
        return user
