"""Reads about the organisation that depend on who asks."""

from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet

from portal.authentication import is_service_account
from portal.exceptions import RuleDenied
from portal.models import Absence, Membership, Notification, Team


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


@dataclass(frozen=True)
class NotificationFilters:
    team: str = ""
    recipient: str = ""
    unread: bool | None = None
    since: datetime | None = None


def _teams_acted_for(account) -> list[int]:
    return [account.team_id, *account.granted_teams.values_list("pk", flat=True)]


def notifications_visible_to(
    *, caller, filters: NotificationFilters = NotificationFilters()
) -> QuerySet[Notification]:
    """A person reads their own notifications. A token reads those of the people of the teams
    it acts for (its own and the granted ones, rule 15), so a team's reporting job sees what
    its people were told; asking for another team is refused (`token_wrong_team`)."""
    notifications = Notification.objects.select_related("recipient")
    if is_service_account(caller):
        teams = _teams_acted_for(caller)
        if filters.team:
            asked = Team.objects.filter(slug=filters.team).values_list("pk", flat=True).first()
            if asked not in teams:
                raise RuleDenied(
                    f"This token does not act for the team '{filters.team}': leave the team "
                    "filter out, or ask an administrator to grant it that team.",
                    code="token_wrong_team",
                )
            teams = [asked]
        member = Membership.objects.filter(user=OuterRef("recipient"), team__in=teams)
        notifications = notifications.filter(Exists(member))
    else:
        notifications = notifications.filter(recipient=caller)
        if filters.team:
            member = Membership.objects.filter(user=OuterRef("recipient"), team__slug=filters.team)
            notifications = notifications.filter(Exists(member))
    if filters.recipient:
        notifications = notifications.filter(recipient__username=filters.recipient)
    if filters.unread is not None:
        notifications = notifications.filter(read_at__isnull=filters.unread)
    if filters.since is not None:
        notifications = notifications.filter(created_at__gte=filters.since)
    return notifications.order_by("-id")


def absences_covering(*, day: date) -> QuerySet[Absence]:
    """The absences in force on `day` (not cancelled, the day inside their dates)."""
    return Absence.objects.filter(cancelled_at__isnull=True, starts_on__lte=day, ends_on__gte=day)


def absences_overlapping(*, starts_on: date, ends_on: date) -> QuerySet[Absence]:
    """The absences not cancelled that share at least one day with `starts_on`..`ends_on`."""
    return Absence.objects.filter(
        cancelled_at__isnull=True, starts_on__lte=ends_on, ends_on__gte=starts_on
    )


def absences_of(*, user: AbstractBaseUser) -> QuerySet[Absence]:
    """The person's absences, cancelled and past ones included, newest first."""
    return Absence.objects.filter(person=user).select_related("team", "delegate")


def delegations_to(*, user: AbstractBaseUser, today: date) -> QuerySet[Absence]:
    """The absences, current or to come, for which `user` stands in."""
    return Absence.objects.filter(
        delegate=user, cancelled_at__isnull=True, ends_on__gte=today
    ).select_related("team", "person")


def absences_to_come(*, today: date) -> QuerySet[Absence]:
    """Everyone's absences, current or to come, soonest first: what a change manager keeps."""
    return (
        Absence.objects.filter(cancelled_at__isnull=True, ends_on__gte=today)
        .select_related("person", "team", "delegate")
        .order_by("starts_on", "id")
    )


def delegate_candidates(*, person: AbstractBaseUser | None = None) -> QuerySet[Membership]:
    """Who may be named delegate: the approvers of the teams where `person` approves, but not
    `person` (every approver of any team when no person is given yet)."""
    approvers = Membership.objects.filter(is_approver=True, user__is_active=True)
    if person is not None:
        teams = Membership.objects.filter(user=person, is_approver=True).values("team_id")
        approvers = approvers.filter(team_id__in=teams).exclude(user=person)
    return approvers.select_related("user", "team").order_by("team__name", "user__last_name")
