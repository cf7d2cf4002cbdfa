from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from portal.exceptions import Conflict
from releases.models import EnvironmentPolicy
from releases.selectors.policy import environment_policies_current, environment_policy_current
from releases.services import policy

pytestmark = pytest.mark.django_db


def test_a_policy_change_writes_the_next_version_and_audits_before_and_after(org, envs):
    prod = envs["prod"]
    first = environment_policy_current(environment=prod)
    second = policy.environment_policy_change(
        actor=None,
        environment=prod,
        approval_teams=[org["model-risk"]],
        soak_source=envs["test"],
        soak_days=3,
        exclude_commit_authors=True,
    )
    assert (first.version, second.version) == (1, 2)
    first.refresh_from_db()
    assert [t.slug for t in first.approval_teams.all()] == [
        "model-risk",
        "platform-operations",
        "release-management",
    ]
    assert first.soak_days == 7
    assert environment_policy_current(environment=prod) == second
    assert environment_policies_current()[prod.pk] == second
    event = AuditEvent.objects.filter(action="environment_policy.changed").order_by("-seq")[0]
    assert event.data["before"]["version"] == 1
    assert event.data["before"]["soak_days"] == 7
    assert event.data["after"]["approval_teams"] == ["model-risk"]
    assert event.data["after"]["exclude_commit_authors"] is True
    assert event.environment == "prod"


def test_an_environment_cannot_soak_in_itself(org, envs):
    with pytest.raises(Conflict) as error:
        policy.environment_policy_change(
            actor=None, environment=envs["test"], approval_teams=[], soak_source=envs["test"]
        )
    assert error.value.code == "soak_source_self"
    assert EnvironmentPolicy.objects.filter(environment=envs["test"]).count() == 1


def test_freeze_create_and_cancel_are_audited_and_the_row_stays(administrator, envs):
    start = timezone.now() + timedelta(days=30)
    freeze = policy.freeze_window_create(
        actor=administrator,
        environment=envs["prod"],
        starts_at=start,
        ends_at=start + timedelta(days=10),
        reason="Year-end",
    )
    assert freeze.created_by_name == "admin"
    cancelled = policy.freeze_window_cancel(
        actor=administrator, freeze_window=freeze, reason="Board lifted it"
    )
    assert cancelled.cancelled_at is not None
    actions = list(
        AuditEvent.objects.filter(object_type="releases.freezewindow", object_id=str(freeze.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["freeze_window.created", "freeze_window.cancelled"]
    with pytest.raises(Conflict) as error:
        policy.freeze_window_cancel(actor=administrator, freeze_window=freeze, reason="again")
    assert error.value.code == "freeze_cancelled"


def test_a_freeze_must_end_after_it_starts(envs):
    start = timezone.now()
    with pytest.raises(Conflict) as error:
        policy.freeze_window_create(
            actor=None, environment=envs["prod"], starts_at=start, ends_at=start, reason="x"
        )
    assert error.value.code == "freeze_order"
