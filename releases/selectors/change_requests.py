"""Reads about change requests, several of them depending on who asks: what waits for me, the
filtered list, and the change request page with the buttons the asker may press.

Who may sign, edit, submit or cancel is decided by `releases.permissions`, the same functions the
services refuse with, so a button is shown exactly when the service would accept the click (the
commit-author rule is checked on the page and at signing, not in the "waiting for me" list,
where it would need git per row)."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import can_read_audit
from portal.exceptions import NotFound, RuleDenied
from portal.models import Absence, Membership, Team
from portal.selectors import absences_covering
from registry.models import Finding, Validation
from registry.reproducibility import Reproducibility, reproducibility
from releases.hooks import ExternalLink, external_links
from releases.models import ChangeRequest, EnvironmentPolicy, SignOff, SignOffKind
from releases.permissions import (
    Action,
    Slot,
    delegate_denial,
    may,
    open_slots,
    signer_denial,
)
from releases.selectors.commits import ReleaseCommits, release_commits
from releases.selectors.policy import environment_policies_current, environment_policy_current
from releases.states import FINAL, Kind, State

NUMBER = re.compile(r"^CR-(\d{1,18})$", re.IGNORECASE)


def change_requests() -> QuerySet[ChangeRequest]:
    return ChangeRequest.objects.select_related(
        "model_version__model",
        "model_version__repository",
        "environment",
        "requester",
        "team",
        "policy",
        "risk_policy",
    )


def change_request_get(
    *, number: str, queryset: QuerySet[ChangeRequest] | None = None
) -> ChangeRequest:
    """The request called `CR-42` (the number is its id)."""
    match = NUMBER.match(number.strip())
    queryset = change_requests() if queryset is None else queryset
    found = queryset.filter(pk=int(match.group(1))).first() if match else None
    if found is None:
        raise NotFound(
            f"No change request is numbered '{number}'. Numbers look like CR-42; the Change "
            "requests page lists them.",
            code="unknown_change_request",
        )
    return found


@dataclass(frozen=True)
class ChangeRequestFilters:
    state: str = ""
    environment: str = ""
    model: str = ""
    requester: str = ""
    team: str = ""
    kind: str = ""
    updated_since: datetime | None = None


LIST_COLUMNS = (
    "title",
    "state",
    "kind",
    "window_start",
    "window_end",
    "created_at",
    "model_version__version",
    "model_version__model__name",
    "environment__name",
    "requester__username",
    "team__name",
)


def _matching(
    queryset: QuerySet[ChangeRequest], filters: ChangeRequestFilters
) -> QuerySet[ChangeRequest]:
    """`team` keeps requests filed by that team or signed by it (a standing sign-off), on the
    page and in the API alike."""
    exact = {
        "state": filters.state,
        "environment__name": filters.environment,
        "model_version__model__name": filters.model,
        "requester__username": filters.requester,
        "kind": filters.kind,
    }
    queryset = queryset.filter(**{key: value for key, value in exact.items() if value})
    if filters.updated_since is not None:
        queryset = queryset.filter(updated_at__gte=filters.updated_since)
    if filters.team:
        # EXISTS rather than a join: no DISTINCT, so a page is read by walking the id index.
        signed = SignOff.objects.filter(
            change_request=OuterRef("pk"), team__slug=filters.team, voided_at__isnull=True
        )
        queryset = queryset.filter(Q(team__slug=filters.team) | Exists(signed))
    return queryset


def change_request_list(*, user, filters: ChangeRequestFilters) -> QuerySet[ChangeRequest]:
    """Every signed-in person may read every change request: the office works in the open.
    Newest first, with the columns the list shows only: a page's cost is mostly building its
    rows."""
    queryset = ChangeRequest.objects.select_related(
        "model_version__model", "environment", "requester", "team"
    ).only(*LIST_COLUMNS)
    return _matching(queryset, filters).order_by("-id")


def change_requests_detailed() -> QuerySet[ChangeRequest]:
    """Change requests with everything the API shows of one, every sign-off included (voided
    and withdrawn ones too, with who withdrew them): a fixed number of queries for any page."""
    return change_requests().prefetch_related(
        Prefetch(
            "sign_offs",
            queryset=SignOff.objects.select_related(
                "team", "signer", "policy", "withdrawn_by", "on_behalf_of"
            ).order_by("signed_at", "id"),
        )
    )


def change_requests_read(*, filters: ChangeRequestFilters) -> QuerySet[ChangeRequest]:
    """The API's list: the page's filters, plus `updated_since` for reports that sync."""
    return _matching(change_requests_detailed(), filters).order_by("-id")


def sign_offs_of(
    *, change_request: ChangeRequest, kind: str = "", voided: bool | None = None
) -> QuerySet[SignOff]:
    """Every sign-off of a change request, as given: voided ones (by an edit) and withdrawn ones
    (by their signer) keep their reason, so a report sees what was signed and undone."""
    sign_offs = SignOff.objects.filter(change_request=change_request).select_related(
        "team", "signer", "policy", "withdrawn_by", "on_behalf_of"
    )
    if kind:
        sign_offs = sign_offs.filter(kind=kind)
    if voided is not None:
        sign_offs = sign_offs.filter(voided_at__isnull=not voided)
    return sign_offs.order_by("id")


LIST_PAGE_SIZE = 50


@dataclass(frozen=True)
class ChangeRequestListPage:
    """One page of the list. `older_than` / `newer_than` are the cursors of the next and the
    previous page (a change request id), None when there is none."""

    rows: list[ChangeRequest]
    older_than: int | None
    newer_than: int | None


def change_request_list_page(
    *,
    user,
    filters: ChangeRequestFilters,
    older_than: int | None = None,
    newer_than: int | None = None,
    size: int = LIST_PAGE_SIZE,
) -> ChangeRequestListPage:
    """A page of `change_request_list`, by keyset on the id (the list's order): the rows older
    than one id, or newer than one. The cost follows the page, not the number of change
    requests: one query for the rows, one more on a later page to know whether it has newer
    ones."""
    matching = change_request_list(user=user, filters=filters)
    if newer_than is not None:
        rows = list(matching.filter(pk__gt=newer_than).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        more_older = bool(rows) and matching.filter(pk__lt=rows[-1].pk).exists()
    elif older_than is not None:
        rows = list(matching.filter(pk__lt=older_than)[: size + 1])
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = bool(rows) and matching.filter(pk__gt=rows[0].pk).exists()
    else:
        rows = list(matching[: size + 1])
        more_older, more_newer = len(rows) > size, False
        rows = rows[:size]
    return ChangeRequestListPage(
        rows=rows,
        older_than=rows[-1].pk if more_older else None,
        newer_than=rows[0].pk if more_newer else None,
    )


@dataclass(frozen=True)
class WaitingItem:
    """A signature `change_request` waits for; `on_behalf_of` is the absent approver whose
    delegate the asker would sign as."""

    change_request: ChangeRequest
    slot: Slot
    waiting_since: datetime
    on_behalf_of: Any = None

    @property
    def age(self) -> timedelta:
        return timezone.now() - self.waiting_since

    @property
    def sign_query(self) -> str:
        """The sign page's query string for this signature."""
        return sign_query(self.slot, self.on_behalf_of)


def sign_query(slot: Slot, on_behalf_of=None) -> str:
    params = {}
    if slot.team is not None:
        params["team"] = slot.team.slug
    if on_behalf_of is not None:
        params["on_behalf_of"] = on_behalf_of.get_username()
    return f"?{urlencode(params)}" if params else ""


@dataclass(frozen=True)
class Delegations:
    """What a person's delegations are today: the absences that name them (with the absent
    principals and their memberships) and their own absences, read once for a page."""

    absences: list[Absence]
    principal_memberships: dict[int, list[Membership]]

    @classmethod
    def of(cls, user, *, today: date) -> "Delegations":
        covering = absences_covering(day=today)
        absences = list(
            covering.filter(Q(delegate=user) | Q(person=user)).select_related("person", "team")
        )
        principals = {a.person_id for a in absences if a.delegate_id == user.pk}
        memberships: dict[int, list[Membership]] = {pk: [] for pk in principals}
        for membership in Membership.objects.filter(user_id__in=principals):
            memberships[membership.user_id].append(membership)
        return cls(absences, memberships)

    def principals_for(self, user, slot: Slot) -> list:
        """The absent approvers whose place in `slot` the user is named to take today."""
        if slot.kind != SignOffKind.APPROVAL:
            return []
        return [
            absence.person
            for absence in self.absences
            if absence.delegate_id == user.pk and absence.team_id == slot.team.pk
        ]

    def denial(
        self,
        *,
        user,
        principal,
        change_request: ChangeRequest,
        slot: Slot,
        memberships: list[Membership],
        sign_offs: list[SignOff],
        today: date,
        commit_author_emails: set[str] | None = None,
    ):
        return delegate_denial(
            user=user,
            principal=principal,
            change_request=change_request,
            slot=slot,
            memberships=memberships,
            principal_memberships=self.principal_memberships.get(principal.pk, []),
            sign_offs=sign_offs,
            absences=self.absences,
            today=today,
            commit_author_emails=commit_author_emails,
        )


def _active_sign_offs() -> Prefetch:
    return Prefetch(
        "sign_offs", queryset=SignOff.objects.filter(voided_at__isnull=True), to_attr="active"
    )


def change_requests_waiting_for(*, user) -> list[WaitingItem]:
    """What `user` can sign now, oldest first: peer reviews for their teams, approvals and
    retrospectives for teams where they hold the approver role, emergency authorisations if they
    are an emergency approver. An approval they may give as the delegate of an absent approver
    of that team comes marked with that principal. A fixed number of queries however long the
    list."""
    today = timezone.localdate()
    delegations = Delegations.of(user, today=today)
    memberships = list(Membership.objects.filter(user=user).select_related("team"))
    if not memberships:
        return []
    wanted = Q(state=State.IN_REVIEW, team_id__in=[m.team_id for m in memberships])
    if any(m.is_approver for m in memberships):
        wanted |= Q(state__in=[State.IN_APPROVAL, State.RETRO_REVIEW])
    if any(m.is_emergency_approver for m in memberships):
        wanted |= Q(state=State.AWAITING_AUTHORISATION)
    candidates = (
        change_requests()
        .filter(wanted)
        .exclude(requester=user)
        .prefetch_related(_active_sign_offs())
    ).order_by("submitted_at", "id")
    policies = environment_policies_current()
    items = []
    for change_request in candidates:
        policy = policies.get(change_request.environment_id)
        teams = policy.teams_for(change_request) if policy else []
        since = change_request.submitted_at or change_request.created_at
        for slot in open_slots(change_request, teams, change_request.active):
            principal = next(
                (
                    principal
                    for principal in delegations.principals_for(user, slot)
                    if delegations.denial(
                        user=user,
                        principal=principal,
                        change_request=change_request,
                        slot=slot,
                        memberships=memberships,
                        sign_offs=change_request.active,
                        today=today,
                    )
                    is None
                ),
                None,
            )
            if principal is not None:
                items.append(WaitingItem(change_request, slot, since, on_behalf_of=principal))
                continue
            denial = signer_denial(
                user=user,
                change_request=change_request,
                slot=slot,
                memberships=memberships,
                sign_offs=change_request.active,
                authoriser_excluded=policy.retrospective_excludes_authoriser if policy else True,
            )
            if denial is None:
                items.append(WaitingItem(change_request, slot, since))
    return sorted(items, key=lambda item: (item.waiting_since, item.change_request.pk))


@dataclass(frozen=True)
class DelegateSlot:
    """A slot the asker may fill as the delegate of the absent `principal`."""

    slot: Slot
    principal: Any

    @property
    def query(self) -> str:
        return sign_query(self.slot, self.principal)


@dataclass
class Panel:
    """One signature the request needs (or got): who signed what, when, under which policy."""

    slot: Slot
    sign_offs: list[SignOff]
    open: bool
    can_sign: bool
    denial: str = ""
    can_withdraw: bool = False
    # How the asker may sign this slot as the delegate of an absent approver.
    delegations: list[DelegateSlot] = field(default_factory=list)

    @property
    def sign_query(self) -> str:
        return sign_query(self.slot)

    @property
    def active(self) -> SignOff | None:
        return next((s for s in self.sign_offs if s.voided_at is None), None)

    @property
    def voided(self) -> list[SignOff]:
        return [s for s in self.sign_offs if s.voided_at is not None]


@dataclass
class ChangeRequestPage:
    change_request: ChangeRequest
    policy: EnvironmentPolicy | None
    panels: list[Panel]
    events: list[AuditEvent]
    commits: ReleaseCommits
    reproducibility: Reproducibility
    can_edit: bool
    can_submit: bool
    can_cancel: bool
    sign_slots: list[Slot] = field(default_factory=list)
    delegate_slots: list[DelegateSlot] = field(default_factory=list)
    can_read_audit: bool = False
    retrospective_overdue: bool = False
    validation: Validation | None = None
    external_links: list[ExternalLink] = field(default_factory=list)

    @property
    def model_risk_team(self) -> str:
        return settings.GATEHOUSE_MODEL_RISK_TEAM


def _panels(
    change_request: ChangeRequest,
    policy: EnvironmentPolicy | None,
    sign_offs: list[SignOff],
) -> list[tuple[Slot, list[SignOff]]]:
    if change_request.kind == Kind.EMERGENCY:
        teams = list(policy.approval_teams.all()) if policy else []
    else:
        teams = policy.teams_for(change_request) if policy else []
    by_team: dict[tuple[str, int | None], list[SignOff]] = {}
    for sign_off in sign_offs:
        team_id = None if sign_off.kind == SignOffKind.EMERGENCY_AUTHORISATION else sign_off.team_id
        by_team.setdefault((sign_off.kind, team_id), []).append(sign_off)
    # Teams that signed under an earlier policy version still get their panel.
    for sign_off in sign_offs:
        extra = sign_off.team
        team_kinds = (SignOffKind.APPROVAL, SignOffKind.RETROSPECTIVE)
        if sign_off.kind in team_kinds and extra is not None and extra not in teams:
            teams.append(extra)
    slots: list[Slot] = []
    if change_request.kind == Kind.EMERGENCY:
        slots.append(Slot(SignOffKind.EMERGENCY_AUTHORISATION, None))
        slots += [Slot(SignOffKind.RETROSPECTIVE, team) for team in teams]
    else:
        if (policy and (policy.needs_peer_review or change_request.kind == Kind.STANDARD)) or (
            SignOffKind.PEER_REVIEW,
            change_request.team_id,
        ) in by_team:
            slots.append(Slot(SignOffKind.PEER_REVIEW, change_request.team))
        slots += [Slot(SignOffKind.APPROVAL, team) for team in teams]
    return [
        (slot, by_team.get((slot.kind, slot.team.pk if slot.team else None), [])) for slot in slots
    ]


def change_request_page(*, user, number: str) -> ChangeRequestPage:
    """Everything the change request page shows, in a fixed number of queries whatever the
    number of sign-offs and audit events."""
    change_request = change_request_get(
        number=number, queryset=change_requests().prefetch_related("model_version__datasets")
    )
    version = change_request.model_version
    sign_offs = list(
        change_request.sign_offs.select_related(
            "signer", "team", "policy", "withdrawn_by", "on_behalf_of"
        ).order_by("signed_at", "id")
    )
    active = [s for s in sign_offs if s.voided_at is None]
    policy = environment_policy_current(environment=change_request.environment)
    memberships = list(Membership.objects.filter(user=user)) if user.is_authenticated else []
    commits = release_commits(model_version=version, environment=change_request.environment)
    authors = None
    if policy is not None and policy.exclude_commit_authors:
        authors = commits.author_emails if commits.known else None
    open_now = open_slots(
        change_request, policy.teams_for(change_request) if policy else [], active
    )
    today = timezone.localdate()
    delegations = (
        Delegations.of(user, today=today) if user.is_authenticated else Delegations([], {})
    )
    commits_readable = not (policy and policy.exclude_commit_authors and authors is None)
    panels, sign_slots, delegate_slots = [], [], []
    for slot, given in _panels(change_request, policy, sign_offs):
        is_open = slot in open_now
        denial = None
        delegated = []
        if is_open and commits_readable:
            delegated = [
                DelegateSlot(slot, principal)
                for principal in delegations.principals_for(user, slot)
                if delegations.denial(
                    user=user,
                    principal=principal,
                    change_request=change_request,
                    slot=slot,
                    memberships=memberships,
                    sign_offs=active,
                    today=today,
                    commit_author_emails=authors,
                )
                is None
            ]
            delegate_slots += delegated
        if is_open:
            denial = signer_denial(
                user=user,
                change_request=change_request,
                slot=slot,
                memberships=memberships,
                sign_offs=active,
                commit_author_emails=authors,
                authoriser_excluded=policy.retrospective_excludes_authoriser if policy else True,
            )
            if denial is None and authors is None and policy and policy.exclude_commit_authors:
                denial = RuleDenied(
                    f"The commits of this release cannot be read ({commits.note}).",
                    code="commits_unknown",
                )
        can_sign = is_open and denial is None
        if can_sign:
            sign_slots.append(slot)
        standing = next((s for s in given if s.voided_at is None), None)
        if standing is not None:
            standing.change_request = change_request
        panels.append(
            Panel(
                slot=slot,
                sign_offs=given,
                open=is_open,
                can_sign=can_sign,
                denial=denial.detail if denial is not None else "",
                can_withdraw=standing is not None and may(user, Action.WITHDRAW_SIGN_OFF, standing),
                delegations=delegated,
            )
        )
    # The request's own history is part of reading it; the whole trail stays for auditors.
    events = list(
        AuditEvent.objects.filter(
            object_type="releases.changerequest", object_id=str(change_request.pk)
        ).order_by("seq")
    )
    return ChangeRequestPage(
        change_request=change_request,
        policy=policy,
        panels=panels,
        events=events,
        commits=commits,
        reproducibility=reproducibility(version),
        can_edit=may(user, Action.EDIT, change_request),
        can_submit=may(user, Action.SUBMIT, change_request),
        can_cancel=may(user, Action.CANCEL, change_request),
        sign_slots=sign_slots,
        delegate_slots=delegate_slots,
        can_read_audit=can_read_audit(user),
        retrospective_overdue=retrospective_overdue(change_request, now=timezone.now()),
        validation=validation_covering(version),
        external_links=external_links([change_request]).get(change_request.pk, []),
    )


def validation_covering(version) -> Validation | None:
    """The newest concluded validation that covers the build, with its findings, for Model
    Risk's panel (one still open counts for nothing yet)."""
    validation = (
        Validation.objects.filter(covers=version, concluded_at__isnull=False)
        .select_related("validator")
        .prefetch_related(Prefetch("findings", queryset=Finding.objects.select_related("owner")))
        .order_by("-concluded_at", "-pk")
        .first()
    )
    return validation


def retrospective_overdue(change_request: ChangeRequest, *, now: datetime) -> bool:
    """Rule 11: an emergency change in retrospective review past its deadline (what the pages
    flag; the service refuses the model's next emergency change for it)."""
    due = change_request.retrospective_due_at
    return change_request.state == State.RETRO_REVIEW and due is not None and due < now


@dataclass(frozen=True)
class EmergencyRow:
    change_request: ChangeRequest
    owed: list[Team]
    overdue: bool


def emergency_overview(*, include_final: bool = False) -> list[EmergencyRow]:
    """Emergency changes with the retrospective reviews each still owes (rule 11), those due
    first; in a fixed number of queries."""
    queryset = change_requests().filter(kind=Kind.EMERGENCY)
    if not include_final:
        queryset = queryset.exclude(state__in=FINAL)
    queryset = queryset.prefetch_related(_active_sign_offs()).order_by(
        F("retrospective_due_at").asc(nulls_last=True), "-id"
    )
    policies = environment_policies_current()
    now = timezone.now()
    rows = []
    for change_request in queryset:
        policy = policies.get(change_request.environment_id)
        owed = []
        if change_request.state == State.RETRO_REVIEW and policy is not None:
            owed = [
                slot.team
                for slot in open_slots(
                    change_request, policy.approval_teams.all(), change_request.active
                )
            ]
        overdue = bool(owed) and retrospective_overdue(change_request, now=now)
        rows.append(EmergencyRow(change_request, owed, overdue))
    return rows
