"""Writes to the organisation: teams, memberships, absences, service accounts, users and
groups. Who may approve or sign in is itself governed, so every change here is audited: these
services sit above `audit`, while the models they write stay at the bottom in `portal` (see
`organisation/__init__.py`)."""

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from audit.actions import AuditAction
from audit.services import audit_record
from organisation.hooks import known_environment_names
from organisation.permissions import absence_denial
from portal.authentication import TOKEN_PREFIX, hash_token
from portal.exceptions import Conflict, RuleDenied
from portal.models import (
    Absence,
    Membership,
    ProviderIdentity,
    Scope,
    ServiceAccount,
    ServiceToken,
    Team,
)
from portal.notifications import notify
from portal.selectors import absences_overlapping
from portal.team_groups import TeamGroup

Actor = AbstractBaseUser | ServiceAccount | None

# An environment is named by a slug of at most 50 characters (releases.Environment.name).
ENVIRONMENT_NAME_RE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")


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


@transaction.atomic
def memberships_follow_groups(
    *, user: AbstractBaseUser, groups: Iterable[str], mapping: Iterable[TeamGroup]
) -> None:
    """At each sign-in through the directory or the identity provider, the person's memberships
    in the mapped teams follow the groups they are in now, as the system, audited like any
    membership change: leaving the approvers' group takes the approver role away, leaving every
    group of a team takes the membership. Teams the mapping does not name are left to the
    administrators."""
    held = {group.lower() for group in groups}
    roles_by_team: dict[str, set[str]] = {entry.team: set() for entry in mapping}
    for entry in mapping:
        if entry.group in held:
            roles_by_team[entry.team].add(entry.role)
    teams = {team.slug: team for team in Team.objects.filter(slug__in=roles_by_team)}
    for slug, roles in roles_by_team.items():
        team = teams.get(slug)
        if team is None:
            continue
        if roles:
            membership_set(
                actor=None,
                user=user,
                team=team,
                is_approver="approver" in roles,
                is_emergency_approver="emergency_approver" in roles,
            )
            continue
        membership = Membership.objects.filter(user=user, team=team).first()
        if membership is not None:
            membership_remove(actor=None, membership=membership)


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise Conflict(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(Scope.values)}.",
            code="unknown_scope",
        )
    return sorted(set(scopes))


def environment_names_check(names: Iterable[str]) -> list[str]:
    """The environment names a service account is limited to, sorted and once each; a name of
    the wrong shape, or that no environment has, is a validation error on `environments`."""
    names = sorted({name.strip() for name in names if name.strip()})
    bad = [name for name in names if not ENVIRONMENT_NAME_RE.match(name)]
    if bad:
        raise ValidationError(
            {
                "environments": f"{', '.join(repr(name) for name in bad)}: not an environment "
                "name (letters, digits, '-' and '_', at most 50)."
            }
        )
    known = known_environment_names()
    unknown = [name for name in names if known is not None and name not in known]
    if unknown:
        raise ValidationError(
            {
                "environments": f"No environment is named "
                f"{', '.join(repr(name) for name in unknown)}."
            }
        )
    return names


def _grants(account: ServiceAccount) -> dict[str, list[str]]:
    return {
        "granted_teams": sorted(account.granted_teams.values_list("slug", flat=True)),
        "environments": list(account.environments),
    }


@transaction.atomic
def service_account_create(
    *,
    actor: Actor,
    name: str,
    team: Team,
    scopes: list[str],
    granted_teams: Iterable[Team] = (),
    environments: Iterable[str] = (),
) -> tuple[ServiceAccount, IssuedToken]:
    """Create a service account and its first token; the secret is returned once. Without
    grants it acts on its own team's models in every environment (rule 15)."""
    if ServiceAccount.objects.filter(name=name).exists():
        raise Conflict(
            f"A service account named '{name}' exists already: choose another name, or issue "
            "a new token for that account.",
            code="name_taken",
        )
    account = ServiceAccount(
        name=name,
        team=team,
        scopes=_validate_scopes(scopes),
        environments=environment_names_check(environments),
    )
    account.full_clean()
    account.save()
    account.granted_teams.set([other for other in granted_teams if other.pk != team.pk])
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_ACCOUNT_CREATED,
        target=account,
        data={"name": name, "team": team.slug, "scopes": account.scopes, **_grants(account)},
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
def service_account_grants_set(
    *,
    actor: Actor,
    service_account: ServiceAccount,
    teams: Iterable[Team],
    environments: Iterable[str],
) -> ServiceAccount:
    """Set the other teams whose models the account may act on and the environments it is
    limited to (rule 15; none: every environment). Its own team needs no grant and is left
    out. Unchanged grants write nothing."""
    account = ServiceAccount.objects.select_for_update().get(pk=service_account.pk)
    before = _grants(account)
    teams = {team.pk: team for team in teams if team.pk != account.team_id}.values()
    after = {
        "granted_teams": sorted(team.slug for team in teams),
        "environments": environment_names_check(environments),
    }
    if before == after:
        return account
    account.environments = after["environments"]
    account.full_clean()
    account.save(update_fields=["environments"])
    account.granted_teams.set(teams)
    audit_record(
        actor=actor,
        action=AuditAction.SERVICE_ACCOUNT_GRANTS_CHANGED,
        target=account,
        data={"name": account.name, "before": before, "after": after},
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


@transaction.atomic
def user_sessions_end(*, actor: Actor, user: AbstractBaseUser, request=None) -> int:
    """Sign `user` out everywhere (a lost laptop, a shared screen): every session of theirs ends,
    the one `actor` is using included when it is theirs. Returns how many ended."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    audit_record(
        actor=actor,
        action=AuditAction.USER_SESSIONS_ENDED,
        target=user,
        data={"sessions_ended": len(ended)},
        request=request,
    )
    return len(ended)


USER_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
)


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _user_record(user: AbstractBaseUser) -> dict:
    """What the trail keeps of a user: identity, flags and rights, never the password hash."""
    return {
        **{field: getattr(user, field) for field in USER_FIELDS},
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": _permission_names(user.user_permissions.select_related("content_type")),
    }


def _changes(before: dict, after: dict) -> dict:
    changed = [key for key in after if after[key] != before[key]]
    return {
        "before": {key: before[key] for key in changed},
        "after": {key: after[key] for key in changed},
    }


@transaction.atomic
def user_create(
    *,
    actor: Actor,
    username: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    is_active: bool = True,
    is_staff: bool = False,
    is_superuser: bool = False,
    request=None,
) -> AbstractBaseUser:
    """A new sign-in. Without a password it can sign in through the directory only; the event
    says whether a password was set, never what it is."""
    user = get_user_model()(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        is_active=is_active,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    audit_record(
        actor=actor,
        action=AuditAction.USER_CREATED,
        target=user,
        data={**_user_record(user), "password_usable": user.has_usable_password()},
        request=request,
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: Actor,
    user: AbstractBaseUser,
    groups: Iterable[Group],
    user_permissions: Iterable[Permission],
    request=None,
    **fields,
) -> AbstractBaseUser:
    """Identity, the active, staff and superuser flags, groups and permissions, recorded as
    before and after with the final sets. `fields` are among USER_FIELDS. Nothing changed
    writes nothing."""
    unknown = set(fields) - set(USER_FIELDS)
    if unknown:
        raise TypeError(f"user_update() does not set {', '.join(sorted(unknown))}")
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    before = _user_record(user)
    for field, value in fields.items():
        setattr(user, field, value)
    user.full_clean()
    user.save()
    user.groups.set(groups)
    user.user_permissions.set(user_permissions)
    after = _user_record(user)
    if after == before:
        return user
    audit_record(
        actor=actor,
        action=AuditAction.USER_UPDATED,
        target=user,
        data={"user": user.get_username(), **_changes(before, after)},
        request=request,
    )
    return user


@transaction.atomic
def user_password_set(
    *, actor: Actor, user: AbstractBaseUser, password: str | None, request=None
) -> AbstractBaseUser:
    """Set a user's password, or make it unusable (None). The event says which was done."""
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        actor=actor,
        action=AuditAction.USER_PASSWORD_SET,
        target=user,
        data={"user": user.get_username(), "password_usable": user.has_usable_password()},
        request=request,
    )
    return user


@transaction.atomic
def user_delete(*, actor: Actor, user: AbstractBaseUser, request=None) -> None:
    """Delete a user, their memberships first, each one audited as any membership removal is.
    Deactivating keeps the name on past records and is usually what is wanted."""
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    for membership in Membership.objects.filter(user=user):
        membership_remove(actor=actor, membership=membership)
    data = _user_record(user)
    target = get_user_model()(pk=user.pk, username=user.get_username())
    user.delete()
    audit_record(
        actor=actor, action=AuditAction.USER_DELETED, target=target, data=data, request=request
    )


# What Django accepts in a username (UnicodeUsernameValidator), and room for a "-2" suffix.
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
USERNAME_LENGTH = 140


def _free_username(issuer: str, subject: str, wanted: str) -> str:
    """The provider's name for the person where no account has it yet, else the same with a
    number: an existing account is never taken over because it has the same name."""
    base = USERNAME_UNSAFE.sub("", wanted)[:USERNAME_LENGTH]
    if not base:
        base = "sso-" + hashlib.sha256(f"{issuer} {subject}".encode()).hexdigest()[:12]
    taken = set(
        get_user_model()
        .objects.filter(username__istartswith=base)
        .values_list("username", flat=True)
    )
    taken = {name.lower() for name in taken}
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


@transaction.atomic
def user_sign_in_from_provider(
    *,
    issuer: str,
    claims: Mapping,
    groups: Iterable[str] | None,
    mapping: Iterable[TeamGroup],
    username_claim: str = "preferred_username",
    request=None,
) -> AbstractBaseUser:
    """The account of the person the identity provider vouched for (`claims`: the verified ID
    token's subject with the user info). They are found by issuer and subject only: the first
    sign-in of a subject creates an account of its own, without a password and linked to that
    subject, even when a local or directory account carries the same e-mail or username, so
    whoever controls an address elsewhere cannot take an account over. Later sign-ins bring
    name and e-mail up to date. Where teams are mapped to groups, the memberships follow the
    groups (`groups` None: the provider sent no group claim, and nothing is changed)."""
    subject = str(claims["sub"])
    identity = (
        ProviderIdentity.objects.select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )
    names = {
        "first_name": str(claims.get("given_name") or "")[:150],
        "last_name": str(claims.get("family_name") or "")[:150],
        "email": str(claims.get("email") or "")[:254],
    }
    if identity is None:
        user = user_create(
            actor=None,
            username=_free_username(issuer, subject, str(claims.get(username_claim) or "")),
            password=None,
            request=request,
            **names,
        )
        ProviderIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        audit_record(
            actor=None,
            action=AuditAction.USER_IDENTITY_LINKED,
            target=user,
            data={"user": user.get_username(), "issuer": issuer, "subject": subject},
            request=request,
        )
    else:
        user = identity.user
        if any(getattr(user, field) != value for field, value in names.items()):
            user = user_update(
                actor=None,
                user=user,
                groups=user.groups.all(),
                user_permissions=user.user_permissions.all(),
                request=request,
                **names,
            )
    if groups is not None:
        memberships_follow_groups(user=user, groups=groups, mapping=mapping)
    return user


@transaction.atomic
def user_lockout_clear(*, actor: Actor, attempt: AccessAttempt, request=None) -> None:
    """Forget the failed sign-ins that locked a user name or address out (django-axes)."""
    attempt = AccessAttempt.objects.select_for_update().get(pk=attempt.pk)
    data = {
        "username": attempt.username,
        "ip_address": attempt.ip_address,
        "failures_since_start": attempt.failures_since_start,
    }
    attempt.delete()
    audit_record(actor=actor, action=AuditAction.USER_LOCKOUT_CLEARED, data=data, request=request)


def _group_record(group: Group) -> dict:
    return {
        "name": group.name,
        "permissions": _permission_names(group.permissions.select_related("content_type")),
    }


@transaction.atomic
def group_create(
    *, actor: Actor, name: str, permissions: Iterable[Permission], request=None
) -> Group:
    group = Group(name=name)
    group.full_clean()
    group.save()
    group.permissions.set(permissions)
    audit_record(
        actor=actor,
        action=AuditAction.GROUP_CREATED,
        target=group,
        data=_group_record(group),
        request=request,
    )
    return group


@transaction.atomic
def group_update(
    *, actor: Actor, group: Group, name: str, permissions: Iterable[Permission], request=None
) -> Group:
    """Rename a group or change its permissions; members change on the user (`user_update`)."""
    group = Group.objects.select_for_update().get(pk=group.pk)
    before = _group_record(group)
    group.name = name
    group.full_clean()
    group.save()
    group.permissions.set(permissions)
    after = _group_record(group)
    if after == before:
        return group
    audit_record(
        actor=actor,
        action=AuditAction.GROUP_UPDATED,
        target=group,
        data={"group": group.name, **_changes(before, after)},
        request=request,
    )
    return group


@transaction.atomic
def group_delete(*, actor: Actor, group: Group, request=None) -> None:
    """Delete a group; its members lose what it granted, so they are named in the event."""
    group = Group.objects.select_for_update().get(pk=group.pk)
    data = {
        **_group_record(group),
        "members": sorted(u.get_username() for u in group.user_set.all()),
    }
    target = Group(pk=group.pk, name=group.name)
    group.delete()
    audit_record(
        actor=actor, action=AuditAction.GROUP_DELETED, target=target, data=data, request=request
    )


def _person(user: AbstractBaseUser) -> dict:
    return {"id": user.pk, "username": user.get_username(), "name": _full_name(user)}


def _full_name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def _absence_record(absence: Absence) -> dict:
    return {
        "person": _person(absence.person),
        "team": absence.team.slug,
        "delegate": _person(absence.delegate),
        "starts_on": absence.starts_on.isoformat(),
        "ends_on": absence.ends_on.isoformat(),
    }


def _approver_membership(user: AbstractBaseUser, team: Team) -> Membership | None:
    """The user's membership of `team` if they hold the approver role there, locked: a role
    taken away meanwhile waits for the absence to be written, or is seen."""
    return (
        Membership.objects.select_for_update()
        .filter(user=user, team=team, is_approver=True)
        .first()
    )


def _span(absence: Absence) -> str:
    return f"{absence.starts_on:%Y-%m-%d} to {absence.ends_on:%Y-%m-%d}"


@transaction.atomic
def absence_set(
    *,
    actor: Actor,
    person: AbstractBaseUser,
    team: Team,
    delegate: AbstractBaseUser,
    starts_on: date,
    ends_on: date,
    request=None,
    now: datetime | None = None,
) -> Absence:
    """Record that `person`, an approver of `team`, is away from `starts_on` to `ends_on`, and
    that `delegate`, another approver of `team`, gives that team's approvals on their behalf
    meanwhile. Never back-dated (a signature given before stays what it was); one absence per
    person and team at a time; no chains: the delegate is not away themself then, and someone
    who stands in for another is not away either. The person, a change manager or an admin
    records it; the event names both the person and who recorded it."""
    denial = absence_denial(actor, person)
    if denial is not None:
        raise denial
    today = timezone.localdate(now)
    if ends_on < starts_on:
        raise ValidationError(
            {
                "ends_on": ValidationError(
                    "The absence must end on or after its first day: choose a later last day."
                )
            }
        )
    if starts_on < today:
        raise RuleDenied(
            f"An absence starts today ({today:%Y-%m-%d}) at the earliest: it is not back-dated "
            "to cover what was signed before.",
            code="absence_backdated",
        )
    name = _full_name(person)
    if _approver_membership(person, team) is None:
        raise RuleDenied(
            f"{name} does not hold the approver role in {team.name}: there are no approvals "
            "to delegate. Choose a team in which they approve.",
            code="not_an_approver",
        )
    if delegate.pk == person.pk:
        raise RuleDenied(
            "You cannot be your own delegate: name another approver of the team.",
            code="delegate_is_self",
        )
    if not delegate.is_active or _approver_membership(delegate, team) is None:
        raise RuleDenied(
            f"{_full_name(delegate)} does not hold the approver role in {team.name}; a delegate "
            "must. Name an approver of the team, or ask an administrator to grant the role in "
            "Admin → Memberships.",
            code="delegate_not_an_approver",
        )
    overlapping = absences_overlapping(starts_on=starts_on, ends_on=ends_on).select_for_update()
    clash = overlapping.filter(person=person, team=team).first()
    if clash is not None:
        raise Conflict(
            f"{name} is already recorded away from {team.name} from {_span(clash)}; cancel that "
            "absence first.",
            code="absence_overlaps",
        )
    away = overlapping.filter(person=delegate).first()
    if away is not None:
        raise Conflict(
            f"{_full_name(delegate)} is away from {_span(away)} too; a delegate does not hand "
            "on what they were given. Name another approver as delegate.",
            code="delegate_absent",
        )
    covering = overlapping.filter(delegate=person).select_related("person").first()
    if covering is not None:
        raise Conflict(
            f"{name} stands in for {_full_name(covering.person)} from {_span(covering)}; a "
            "delegate does not delegate further. Ask for another delegate first.",
            code="delegate_chain",
        )
    absence = Absence(
        person=person,
        team=team,
        delegate=delegate,
        starts_on=starts_on,
        ends_on=ends_on,
        created_by_name=_full_name(actor) if actor is not None else "system",
    )
    absence.full_clean()
    absence.save()
    _absence_told(absence, actor=actor, cancelled=False)
    audit_record(
        actor=actor,
        action=AuditAction.ABSENCE_SET,
        target=absence,
        data={**_absence_record(absence), "recorded_by": _recorder(actor)},
        request=request,
    )
    return absence


def _recorder(actor: Actor) -> dict | None:
    return _person(actor) if actor is not None else None


@transaction.atomic
def absence_cancel(
    *, actor: Actor, absence: Absence, request=None, now: datetime | None = None
) -> Absence:
    """Call an absence off (back early, or plans changed): from then on its delegate no longer
    signs on the person's behalf; what they signed meanwhile stands. An absence that is over
    stays as it was."""
    absence = (
        Absence.objects.select_for_update()
        .select_related("person", "team", "delegate")
        .get(pk=absence.pk)
    )
    denial = absence_denial(actor, absence.person)
    if denial is not None:
        raise denial
    moment = now or timezone.now()
    if absence.cancelled_at is not None:
        raise Conflict(
            "This absence is cancelled already; there is nothing more to do.",
            code="absence_cancelled",
        )
    if absence.ends_on < timezone.localdate(moment):
        raise Conflict(
            f"This absence ended on {absence.ends_on:%Y-%m-%d}; it stays on record as it was, "
            "and there is nothing to cancel.",
            code="absence_over",
        )
    absence.cancelled_at = moment
    absence.cancelled_by_name = _full_name(actor) if actor is not None else "system"
    absence.full_clean()
    absence.save(update_fields=["cancelled_at", "cancelled_by_name"])
    _absence_told(absence, actor=actor, cancelled=True)
    audit_record(
        actor=actor,
        action=AuditAction.ABSENCE_CANCELLED,
        target=absence,
        data={**_absence_record(absence), "cancelled_by": _recorder(actor)},
        request=request,
    )
    return absence


def _absence_told(absence: Absence, *, actor: Actor, cancelled: bool) -> None:
    """The delegate learns what they now stand in for (or no longer do); the person learns it
    too when someone else recorded or cancelled it."""
    person, span = _full_name(absence.person), _span(absence)
    what = "no longer stand" if cancelled else "stand"
    notify(
        recipients=[absence.delegate],
        key=f"absence:{absence.pk}:{'cancelled' if cancelled else 'set'}:delegate",
        subject=f"You {what} in for {person} in {absence.team.name} ({span})",
        body=(
            f"{person}'s absence from {span} is cancelled: their approvals are theirs again."
            if cancelled
            else f"{person} is away from {span}. Changes waiting for {absence.team.name} show "
            f"under Waiting for me, to sign as {person}'s delegate."
        ),
        reason=f"{person} named you their delegate in {absence.team.name}.",
        link=reverse("organisation:absences"),
    )
    if actor is not None and actor.pk != absence.person_id:
        notify(
            recipients=[absence.person],
            key=f"absence:{absence.pk}:{'cancelled' if cancelled else 'set'}:person",
            subject=(
                f"{_full_name(actor)} {'cancelled' if cancelled else 'recorded'} your absence "
                f"from {span}"
            ),
            body=f"Delegate in {absence.team.name}: {_full_name(absence.delegate)}.",
            reason="It is your absence.",
            link=reverse("organisation:absences"),
        )
