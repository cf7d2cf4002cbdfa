"""Reads about the organisation that depend on who asks."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from portal.models import Membership


def memberships_of(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")
