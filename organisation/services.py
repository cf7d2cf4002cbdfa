"""Writes to the organisation: teams, memberships and service accounts. Who may approve is
itself governed, so every change here is audited: these services sit above `audit`, while the
models they write stay at the bottom in `portal` (see `organisation/__init__.py`)."""

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.actions import AuditAction
from audit.services import audit_record
from portal.authentication import TOKEN_PREFIX, hash_token
from portal.exceptions import Conflict
from portal.models import Membership, Scope, ServiceAccount, ServiceToken, Team

Actor = AbstractBaseUser | ServiceAccount | None


@dataclass(frozen=True)
class IssuedToken:
    """The only moment the secret exists in clear: hand it over, then it is gone."""

    token: ServiceToken
    secret: str


@transaction.atomic
def team_create(*, actor: Actor, name: str, slug: str = "", description: str = "") -> Team:
    team = Team(name=name, slug=slug or slugify(name), description=description)
    team.full_clean()
    team.save()
    audit_record(
        actor=actor,
        action=AuditAction.TEAM_CREATED,
        target=team,
        data={"name": team.name, "slug": team.slug, "description": team.description},
    )
    return team


@transaction.atomic
def team_update(*, actor: Actor, team: Team, name: str, description: str) -> Team:
    team = Team.objects.select_for_update().get(pk=team.pk)
    before = {"name": team.name, "description": team.description}
    team.name, team.description = name, description
    team.full_clean()
    team.save()
    audit_record(
        actor=actor,
        action=AuditAction.TEAM_UPDATED,
        target=team,
        data={"before": before, "after": {"name": name, "description": description}},
    )
    return team


@transaction.atomic
def membership_set(
    *,
    actor: Actor,
    user: AbstractBaseUser,
    team: Team,
    is_approver: bool = False,
    is_emergency_approver: bool = False,
) -> Membership:
    """Add a user to a team or change their roles there. Unchanged roles write nothing."""
    membership = Membership.objects.select_for_update().filter(user=user, team=team).first()
    before = membership.roles if membership else []
    if membership is None:
        membership = Membership(user=user, team=team)
    membership.is_approver = is_approver
    membership.is_emergency_approver = is_emergency_approver
    if before == membership.roles:
        return membership
    membership.full_clean()
    membership.save()
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_CHANGED,
        target=membership,
        data={
            "user": user.get_username(),
            "team": team.slug,
            "roles_before": before,
            "roles_after": membership.roles,
        },
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, membership: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    data = {
        "user": membership.user.get_username(),
        "team": membership.team.slug,
        "roles_before": membership.roles,
    }
    target_repr = Membership(pk=membership.pk, user=membership.user, team=membership.team)
    membership.delete()
    audit_record(actor=actor, action=AuditAction.MEMBERSHIP_REMOVED, target=target_repr, data=data)


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise Conflict(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(Scope.values)}.",
            code="unknown_scope",
        )
    return sorted(set(scopes))


@transaction.atomic
def service_account_create(
    *, actor: Actor, name: str, team: Team, scopes: list[str]
) -> tuple[ServiceAccount, IssuedToken]:
    """Create a service account and its first token; the secret is returned once."""
    if ServiceAccount.objects.filter(name=name).exists():
        raise Conflict(f"A service account named '{name}' exists already.", code="name_taken")
    account = ServiceAccount(name=name, team=team, scopes=_validate_scopes(scopes))
    account.full_clean()
    account.save()
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_ACCOUNT_CREATED,
        target=account,
        data={"name": name, "team": team.slug, "scopes": account.scopes},
    )
    return account, service_token_issue(actor=actor, service_account=account)


@transaction.atomic
def service_account_update(
    *, actor: Actor, service_account: ServiceAccount, scopes: list[str], is_active: bool
) -> ServiceAccount:
    account = ServiceAccount.objects.select_for_update().get(pk=service_account.pk)
    before = {"scopes": account.scopes, "is_active": account.is_active}
    account.scopes, account.is_active = _validate_scopes(scopes), is_active
    account.full_clean()
    account.save()
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_ACCOUNT_UPDATED,
        target=account,
        data={"before": before, "after": {"scopes": account.scopes, "is_active": is_active}},
    )
    return account


@transaction.atomic
def service_token_issue(*, actor: Actor, service_account: ServiceAccount) -> IssuedToken:
    prefix = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_hex(32)}"
    token = ServiceToken.objects.create(
        service_account=service_account, prefix=prefix, token_hash=hash_token(secret)
    )
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_TOKEN_ISSUED,
        target=service_account,
        data={"token_prefix": prefix},
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def service_token_revoke(*, actor: Actor, token: ServiceToken) -> ServiceToken:
    token = ServiceToken.objects.select_for_update().get(pk=token.pk)
    if token.is_revoked:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_TOKEN_REVOKED,
        target=token.service_account,
        data={"token_prefix": token.prefix},
    )
    return token
