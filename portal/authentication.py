"""Bearer tokens for service accounts, and the scope check that goes with them."""

import hashlib
import hmac
from functools import cache

from django.db import connection
from django.db.models import Model
from rest_framework import authentication, exceptions, permissions

from portal.models import ServiceAccount, ServiceToken, Team
from portal.rows import instance_from_row

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


def _columns(model: type[Model], table: str) -> tuple[str, tuple[str, ...]]:
    fields = model._meta.concrete_fields
    names = tuple(field.attname for field in fields)
    quote = connection.ops.quote_name
    return ", ".join(f"{table}.{quote(field.column)}" for field in fields), names


ACCOUNT_OF_PREFIX_SQL = """SELECT {columns} FROM {tokens} t
JOIN {accounts} a ON a.id = t.service_account_id JOIN {teams} m ON m.id = a.team_id
WHERE t.prefix = %s"""


@cache
def _token_sql() -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The token, its account and the account's team in one statement, put together once."""
    token_columns, token_names = _columns(ServiceToken, "t")
    account_columns, account_names = _columns(ServiceAccount, "a")
    team_columns, team_names = _columns(Team, "m")
    sql = ACCOUNT_OF_PREFIX_SQL.format(
        columns=f"{token_columns}, {account_columns}, {team_columns}",
        tokens=ServiceToken._meta.db_table,
        accounts=ServiceAccount._meta.db_table,
        teams=Team._meta.db_table,
    )
    return sql, token_names, account_names, team_names


def token_with_account(prefix: str) -> ServiceToken | None:
    """The token with that lookup prefix, its service account and team loaded, or None. Every
    API call asks this first; compiling the equivalent `select_related` queryset cost more than
    running it."""
    sql, token_names, account_names, team_names = _token_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    token_end, account_end = len(token_names), len(token_names) + len(account_names)
    token = instance_from_row(ServiceToken, token_names, row[:token_end])
    account = instance_from_row(ServiceAccount, account_names, row[token_end:account_end])
    account.team = instance_from_row(Team, team_names, row[account_end:])
    token.service_account = account
    return token


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
        stored = token_with_account(prefix)
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
