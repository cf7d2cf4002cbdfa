"""Which groups of the bank's directory or identity provider make someone a member, an approver
or an emergency approver of a team: one notation for `LDAP_TEAM_GROUPS` and `OIDC_TEAM_GROUPS`,
read by `portal/settings.py`, so it imports no models. The rule that applies it at each sign-in
is `organisation.services.memberships_follow_groups`."""

from dataclasses import dataclass

ROLES = ("member", "approver", "emergency_approver")


@dataclass(frozen=True)
class TeamGroup:
    """Members of the group `group` (a directory DN or a provider's group name, lower case) hold
    `role` in the team `team`."""

    group: str
    team: str
    role: str


def parse_team_groups(value: str, *, variable: str) -> list[TeamGroup]:
    """`model-risk:approver=cn=risk-approvers,ou=groups,dc=bank,dc=example;data-science=…`.
    DNs contain '=' and ',', so an entry splits at its first '=' and entries at ';'. Groups are
    compared without regard to case, as directories compare DNs."""
    mapping = []
    for entry in filter(None, (part.strip() for part in value.split(";"))):
        key, separator, group = entry.partition("=")
        team, _, role = key.strip().partition(":")
        role = role.strip() or "member"
        if not separator or not team.strip() or not group.strip() or role not in ROLES:
            raise ValueError(f"{variable}: cannot read {entry!r}")
        mapping.append(TeamGroup(group=group.strip().lower(), team=team.strip(), role=role))
    return mapping
