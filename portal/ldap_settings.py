"""Optional sign-in through the bank's directory (django-auth-ldap), configured by environment
variables and off unless `LDAP_SERVER_URI` is set. Read by `portal/settings.py`, so it imports
no models.

| variable | what it does |
|---|---|
| `LDAP_SERVER_URI` | `ldaps://ldap.bank.example` (turns the directory on) |
| `LDAP_BIND_DN`, `LDAP_BIND_PASSWORD` | the service bind for searches; empty binds anonymously |
| `LDAP_USER_DN_TEMPLATE` | `uid=%(user)s,ou=people,dc=bank,dc=example`: bind as the user directly |
| `LDAP_USER_SEARCH_BASE`, `LDAP_USER_FILTER` | else search for the user (filter `(uid=%(user)s)`) |
| `LDAP_START_TLS` | `true` to upgrade an `ldap://` connection with StartTLS |
| `LDAP_GROUP_SEARCH_BASE` | where `groupOfNames` groups live (needed for the team mapping) |
| `LDAP_TEAM_GROUPS` | `team-slug[:role]=group DN;…` (portal/team_groups.py) |
"""

from collections.abc import Mapping
from typing import Any

from portal.team_groups import parse_team_groups


def directory_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `AUTH_LDAP_*` settings for django-auth-ldap, or nothing when no server is named."""
    uri = environ.get("LDAP_SERVER_URI", "").strip()
    if not uri:
        return {}
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    config: dict[str, Any] = {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": environ.get("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": environ.get("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": environ.get("LDAP_START_TLS", "").lower() in ("1", "true", "yes"),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CONNECTION_OPTIONS": {ldap.OPT_REFERRALS: 0, ldap.OPT_NETWORK_TIMEOUT: 5},
        "GATEHOUSE_LDAP_TEAM_GROUPS": parse_team_groups(
            environ.get("LDAP_TEAM_GROUPS", ""), variable="LDAP_TEAM_GROUPS"
        ),
    }
    template = environ.get("LDAP_USER_DN_TEMPLATE", "").strip()
    if template:
        config["AUTH_LDAP_USER_DN_TEMPLATE"] = template
    else:
        config["AUTH_LDAP_USER_SEARCH"] = LDAPSearch(
            environ.get("LDAP_USER_SEARCH_BASE", ""),
            ldap.SCOPE_SUBTREE,
            environ.get("LDAP_USER_FILTER", "(uid=%(user)s)"),
        )
    group_base = environ.get("LDAP_GROUP_SEARCH_BASE", "").strip()
    if group_base:
        config["AUTH_LDAP_GROUP_SEARCH"] = LDAPSearch(
            group_base, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"
        )
        config["AUTH_LDAP_GROUP_TYPE"] = GroupOfNamesType()
    return config
