"""Reads about the organisation that depend on who asks."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet

from portal.authentication import is_service_account
from portal.exceptions import RuleDenied
from portal.models import Membership, Notification, Team


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
                    f"This token does not act for the team '{filters.team}'.",
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
