"""The person's own change requests that still need them or that they wait on, for the
dashboard (what they must sign is under Waiting for me; what the controls flag, under Needs
attention)."""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from releases.models import ChangeRequest
from releases.states import Kind, State

# In this order: the requester has a move to make, then the pipeline may go, then they wait.
OPEN_FOR_REQUESTER = [
    State.DRAFT,
    State.REJECTED,
    State.APPROVED,
    State.AUTHORISED,
    State.IN_REVIEW,
    State.IN_APPROVAL,
    State.AWAITING_AUTHORISATION,
    State.RETRO_REVIEW,
]
RECENT_REJECTIONS = timedelta(days=14)


def my_open_changes(
    *, user: AbstractBaseUser, now: datetime, limit: int = 8
) -> list[ChangeRequest]:
    """The person's own unfinished change requests, those they must act on first (a draft to
    file, a recent rejection to read, an approval the pipeline may use)."""
    order = {state: index for index, state in enumerate(OPEN_FOR_REQUESTER)}
    changes = (
        ChangeRequest.objects.filter(requester_id=user.pk, state__in=OPEN_FOR_REQUESTER)
        .exclude(Q(state=State.REJECTED) & Q(updated_at__lt=now - RECENT_REJECTIONS))
        # An approved template is finished: it deploys nothing, its instances do.
        .exclude(kind=Kind.STANDARD_TEMPLATE, state=State.APPROVED)
        .select_related("model_version__model", "environment")
    )
    return sorted(changes, key=lambda change: (order[change.state], -change.pk))[:limit]
