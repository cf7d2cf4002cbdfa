"""Optional single sign-on through the bank's OpenID Connect provider (mozilla-django-oidc),
configured by environment variables and off unless `OIDC_ISSUER` is set. Read by
`portal/settings.py`, so it imports no models. docs/operations.md, "Single sign-on (OIDC)".

| variable | what it does |
|---|---|
| `OIDC_ISSUER` | `https://sso.bank.example/realms/bank` (turns single sign-on on) |
| `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET` | the portal's registration at the provider (required) |
| `OIDC_AUTHORIZATION_ENDPOINT`, `OIDC_TOKEN_ENDPOINT` | else from the discovery document |
| `OIDC_USERINFO_ENDPOINT`, `OIDC_JWKS_URI` | likewise |
| `OIDC_SCOPES` | `openid email profile` |
| `OIDC_SIGN_ALGORITHM` | the ID token's signature algorithm, `RS256` |
| `OIDC_PROVIDER_NAME` | shown as "Sign in with …", `single sign-on` |
| `OIDC_USERNAME_CLAIM` | names a new account, `preferred_username` |
| `OIDC_GROUPS_CLAIM` | the claim that lists a person's groups, `groups` |
| `OIDC_TEAM_GROUPS` | `team-slug[:role]=group;…`, as `LDAP_TEAM_GROUPS` (portal/team_groups.py) |
| `OIDC_TIMEOUT` | seconds to wait for the provider, `10` |
"""

from collections.abc import Mapping
from typing import Any

from portal.team_groups import parse_team_groups

# (Django setting of mozilla-django-oidc, environment variable) for each endpoint.
ENDPOINTS = (
    ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_AUTHORIZATION_ENDPOINT"),
    ("OIDC_OP_TOKEN_ENDPOINT", "OIDC_TOKEN_ENDPOINT"),
    ("OIDC_OP_USER_ENDPOINT", "OIDC_USERINFO_ENDPOINT"),
    ("OIDC_OP_JWKS_ENDPOINT", "OIDC_JWKS_URI"),
)


def provider_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `OIDC_*` settings of mozilla-django-oidc and the portal's own, or nothing when no
    issuer is named. An endpoint left empty is read from the issuer's discovery document when
    first needed (organisation/oidc.py), so the settings never wait on the network."""
    issuer = environ.get("OIDC_ISSUER", "").strip().rstrip("/")
    if not issuer:
        return {}
    missing = [name for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET") if not environ.get(name)]
    if missing:
        raise ValueError(f"OIDC_ISSUER is set: {', '.join(missing)} must be set too.")
    return {
        "OIDC_OP_ISSUER": issuer,
        "OIDC_RP_CLIENT_ID": environ["OIDC_CLIENT_ID"],
        "OIDC_RP_CLIENT_SECRET": environ["OIDC_CLIENT_SECRET"],
        **{setting: environ.get(variable, "").strip() for setting, variable in ENDPOINTS},
        "OIDC_RP_SCOPES": environ.get("OIDC_SCOPES", "openid email profile"),
        "OIDC_RP_SIGN_ALGO": environ.get("OIDC_SIGN_ALGORITHM", "RS256"),
        "OIDC_USE_PKCE": True,
        "OIDC_TIMEOUT": float(environ.get("OIDC_TIMEOUT", "10")),
        "GATEHOUSE_OIDC_PROVIDER_NAME": environ.get("OIDC_PROVIDER_NAME", "single sign-on"),
        "GATEHOUSE_OIDC_USERNAME_CLAIM": environ.get("OIDC_USERNAME_CLAIM", "preferred_username"),
        "GATEHOUSE_OIDC_GROUPS_CLAIM": environ.get("OIDC_GROUPS_CLAIM", "groups"),
        "GATEHOUSE_OIDC_TEAM_GROUPS": parse_team_groups(
            environ.get("OIDC_TEAM_GROUPS", ""), variable="OIDC_TEAM_GROUPS"
        ),
    }
