"""The directory sign-in backend: django-auth-ldap, plus team memberships that follow the
directory groups named in `LDAP_TEAM_GROUPS` (see `portal/ldap_settings.py`)."""

from django.conf import settings
from django.db import transaction
from django_auth_ldap.backend import LDAPBackend

from organisation import services
from portal.models import Membership, Team


class DirectoryBackend(LDAPBackend):
    """Signs people in against the directory. Where teams are mapped to groups, each sign-in
    brings the person's memberships in those teams in line with the groups they are in now,
    through the audited membership services: leaving the approvers' group in the directory
    takes the approver role away at the next sign-in. Teams not mapped are left to the admin."""

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        mapping = getattr(settings, "GATEHOUSE_LDAP_TEAM_GROUPS", [])
        if user is not None and mapping:
            memberships_follow_groups(user=user, group_dns=ldap_user.group_dns, mapping=mapping)
        return user


@transaction.atomic
def memberships_follow_groups(*, user, group_dns, mapping) -> None:
    held = {dn.lower() for dn in group_dns}
    roles_by_team: dict[str, set[str]] = {entry.team: set() for entry in mapping}
    for entry in mapping:
        if entry.dn in held:
            roles_by_team[entry.team].add(entry.role)
    teams = {team.slug: team for team in Team.objects.filter(slug__in=roles_by_team)}
    for slug, roles in roles_by_team.items():
        team = teams.get(slug)
        if team is None:
            continue
        if roles:
            services.membership_set(
                actor=None,
                user=user,
                team=team,
                is_approver="approver" in roles,
                is_emergency_approver="emergency_approver" in roles,
            )
            continue
        membership = Membership.objects.filter(user=user, team=team).first()
        if membership is not None:
            services.membership_remove(actor=None, membership=membership)
