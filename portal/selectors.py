"""Reads about the organisation that depend on who asks."""

from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from portal.models import Absence, Membership


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


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
