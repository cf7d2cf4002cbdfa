"""Every write the Django admin can make writes its audit event (issue 15, item 6). The walk goes
through every model admin registered on the site, as a superuser with the test client: what it
may add, change or delete, it does, and an event must follow; what it may not, it posts anyway,
and the admin must refuse. An admin registered without a case below fails the walk."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.forms import CheckboxInput, MultiWidget
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from audit.services import audit_checkpoint_create, audit_verify
from integrations.models import ChangeTicket, TicketDeliveryAttempt, TicketTransition
from integrations.webhooks import webhook_subscription_create
from organisation import services as organisation
from portal.models import Membership, ServiceToken
from releases.models import EnvironmentPolicy
from releases.services.calendar import maintenance_window_create
from releases.services.policy import freeze_window_create
from tests.registry import helpers

pytestmark = pytest.mark.django_db

REGISTERED = sorted(model._meta.label for model in admin.site._registry)


def a_user(world):
    return organisation.user_create(actor=None, username="walker", password="S3cure-enough!x")


def a_group(world):
    return organisation.group_create(actor=None, name="walkers", permissions=[])


def an_absence(world):
    model_risk = world["org"]["model-risk"]
    deputy = organisation.user_create(actor=None, username="deputy", password=None)
    organisation.membership_set(actor=None, user=deputy, team=model_risk, is_approver=True)
    today = timezone.localdate()
    return organisation.absence_set(
        actor=None,
        person=get_user_model().objects.get(username="risk"),
        team=model_risk,
        delegate=deputy,
        starts_on=today,
        ends_on=today + timedelta(days=3),
    )


def an_interval(world):
    return IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)


def a_periodic_task(world):
    return PeriodicTask.objects.create(
        name="walk", task="releases.tasks.poll_health", interval=an_interval(world)
    )


def a_freeze(world):
    start = timezone.now() + timedelta(days=40)
    return freeze_window_create(
        actor=None,
        environment=world["envs"]["prod"],
        starts_at=start,
        ends_at=start + timedelta(days=2),
        reason="Year end",
    )


def a_maintenance_window(world):
    start = timezone.now() + timedelta(days=30)
    return maintenance_window_create(
        actor=None,
        environment=world["envs"]["prod"],
        starts_at=start,
        ends_at=start + timedelta(hours=4),
        title="Database failover test",
    )


def an_access_attempt(world):
    return AccessAttempt.objects.create(
        username="mallory",
        ip_address="192.0.2.7",
        user_agent="curl",
        get_data="",
        post_data="",
        http_accept="*/*",
        path_info="/accounts/login/",
        failures_since_start=9,
    )


def a_webhook(world):
    return webhook_subscription_create(
        actor=None,
        name="walk hook",
        kind="standard",
        url="https://risk.bank.example/hook",
        event_types=["change_request.waiting"],
    ).subscription


def a_change_ticket(world):
    return ChangeTicket.objects.create(
        change_request=world["approved"],
        system="servicenow",
        external_id="9d385017c611228701d22104cc95c371",
        reference="CHG0030001",
        url="https://bank.service-now.example/change_request.do?sys_id=9d38",
    )


def a_ticket_transition(world):
    now = timezone.now()
    transition = TicketTransition.objects.create(
        ticket=a_change_ticket(world),
        event=AuditEvent.objects.order_by("seq").last(),
        kind="create",
        summary="Change request submitted by requester",
        change={"number": world["approved"].number},
        claimed_at=now,
        next_attempt_at=now,
    )
    TicketDeliveryAttempt.objects.create(
        transition=transition,
        attempt=1,
        at=now,
        method="POST",
        path="/api/now/table/change_request",
        status=429,
        ok=False,
        detail="429 Too Many Requests",
        duration_ms=12,
    )
    return transition


SIGN_IN = {"user_agent": "curl", "ip_address": "192.0.2.7", "username": "mallory"}


@dataclass
class Case:
    """How to make an object of the model, what to fill in to add one (given that object, when
    a callable) and what to change, and the events each write must leave (None where the admin
    must refuse it)."""

    existing: object = None
    add: dict | Callable | None = None
    change: dict | None = None
    added: str | None = None
    changed: str | None = None
    deleted: str | None = None
    actions: dict = field(default_factory=dict)


CASES = {
    "auth.User": Case(
        existing=a_user,
        add={
            "username": "newcomer",
            "usable_password": "true",
            "password1": "S3cure-enough!x",
            "password2": "S3cure-enough!x",
        },
        change={"is_active": False, "is_staff": True},
        added="user.created",
        changed="user.updated",
        deleted="user.deleted",
    ),
    "auth.Group": Case(
        existing=a_group,
        add={"name": "reviewers"},
        change={"name": "walkers-renamed"},
        added="group.created",
        changed="group.updated",
        deleted="group.deleted",
    ),
    "portal.Team": Case(
        existing=lambda world: world["org"]["data-science"],
        add={"name": "Fraud Analytics", "slug": "fraud-analytics"},
        change={"description": "Scores fraud."},
        added="team.created",
        changed="team.updated",
    ),
    "portal.Membership": Case(
        existing=lambda world: Membership.objects.filter(team__slug="data-science").first(),
        add=lambda membership: {
            "user": str(get_user_model().objects.get(username="auditor").pk),
            "team": str(membership.team_id),
            "is_approver": True,
        },
        change={"is_emergency_approver": True},
        added="membership.changed",
        changed="membership.changed",
        deleted="membership.removed",
    ),
    # Recorded on the My absences page; the admin reads and cancels them.
    "portal.Absence": Case(existing=an_absence, actions={"cancel": "absence.cancelled"}),
    "portal.ServiceAccount": Case(
        existing=lambda world: world["ci"].account,
        add=lambda account: {
            "name": "ci-walk",
            "team": str(account.team_id),
            "scopes": '["gate:read"]',
        },
        change={"scopes": '["gate:read"]'},
        added="service_account.created",
        changed="service_account.updated",
        actions={"issue_token": "service_token.issued"},
    ),
    "portal.ServiceToken": Case(
        existing=lambda world: (
            ServiceToken.objects.filter(service_account=world["ci"].account).order_by("pk").first()
        ),
        actions={"revoke": "service_token.revoked"},
    ),
    "audit.AuditEvent": Case(existing=lambda world: AuditEvent.objects.order_by("seq").last()),
    "audit.AuditCheckpoint": Case(
        existing=lambda world: audit_checkpoint_create(actor=None) or AuditCheckpoint.objects.last()
    ),
    "audit.AuditVerification": Case(
        existing=lambda world: audit_verify(actor=None)[0] or AuditVerification.objects.last()
    ),
    "registry.Repository": Case(
        existing=lambda world: world["version"].repository,
        add={"url": "https://git.example.com/bank/walk"},
        change={"gitlab_url": "https://gitlab.example.com", "gitlab_project_id": "77"},
        added="repository.registered",
        changed="repository.configured",
    ),
    "registry.RegisteredModel": Case(
        existing=lambda world: world["version"].model,
        add=lambda model: {
            "name": "walk-model",
            "owner_team": str(model.owner_team_id),
            "description": "Walks.",
            "risk_tier": "2",
        },
        added="model.registered",
    ),
    "registry.DatasetVersion": Case(existing=lambda world: helpers.register_dataset()),
    "registry.ModelVersion": Case(existing=lambda world: world["version"]),
    "releases.Environment": Case(
        existing=lambda world: world["envs"]["dev"],
        add={"name": "staging", "rank": "5"},
        change={"description": "Where builds first land."},
        added="environment.created",
        changed="environment.updated",
    ),
    "releases.EnvironmentPolicy": Case(
        existing=lambda world: EnvironmentPolicy.objects.get(
            environment=world["envs"]["test"], version=1
        ),
        add=lambda policy: {
            "environment": str(policy.environment_id),
            "_confirm_policy": "Save this policy version",
        },
        change={"soak_days": "3", "_confirm_policy": "Save this policy version"},
        added="environment_policy.changed",
        changed="environment_policy.changed",
    ),
    "releases.FreezeWindow": Case(
        existing=a_freeze,
        add=lambda freeze: {
            "environment": str(freeze.environment_id),
            "starts_at_0": (timezone.now() + timedelta(days=60)).date().isoformat(),
            "starts_at_1": "00:00:00",
            "ends_at_0": (timezone.now() + timedelta(days=61)).date().isoformat(),
            "ends_at_1": "00:00:00",
            "reason": "Migration weekend",
        },
        added="freeze_window.created",
        actions={"cancel": "freeze_window.cancelled"},
    ),
    "releases.MaintenanceWindow": Case(
        existing=a_maintenance_window,
        add=lambda window: {
            "environment": str(window.environment_id),
            "starts_at_0": (timezone.now() + timedelta(days=60)).date().isoformat(),
            "starts_at_1": "22:00:00",
            "ends_at_0": (timezone.now() + timedelta(days=61)).date().isoformat(),
            "ends_at_1": "02:00:00",
            "title": "Kubernetes upgrade",
        },
        added="maintenance_window.created",
        actions={"cancel": "maintenance_window.cancelled"},
    ),
    "releases.ChangeRequest": Case(existing=lambda world: world["approved"]),
    "releases.SignOff": Case(existing=lambda world: world["approved"].sign_offs.first()),
    "django_celery_beat.PeriodicTask": Case(
        existing=a_periodic_task,
        add=lambda task: {
            "name": "walk-added",
            "regtask": "releases.tasks.poll_health",
            "interval": str(task.interval_id),
        },
        change={"enabled": False},
        added="schedule.created",
        changed="schedule.updated",
        deleted="schedule.deleted",
        actions={"run_tasks": None},
    ),
    "django_celery_beat.IntervalSchedule": Case(
        existing=an_interval,
        add={"every": "11", "period": IntervalSchedule.SECONDS},
        change={"every": "13"},
        added="schedule.created",
        changed="schedule.updated",
        deleted="schedule.deleted",
    ),
    "django_celery_beat.CrontabSchedule": Case(
        existing=lambda world: CrontabSchedule.objects.create(minute="5", hour="4"),
        add={"minute": "15", "hour": "2"},
        change={"hour": "3"},
        added="schedule.created",
        changed="schedule.updated",
        deleted="schedule.deleted",
    ),
    "django_celery_beat.SolarSchedule": Case(
        existing=lambda world: SolarSchedule.objects.create(
            event="sunrise", latitude="47.37", longitude="8.54"
        ),
        add={"event": "sunset", "latitude": "51.5", "longitude": "-0.12"},
        change={"latitude": "48.2"},
        added="schedule.created",
        changed="schedule.updated",
        deleted="schedule.deleted",
    ),
    "django_celery_beat.ClockedSchedule": Case(
        existing=lambda world: ClockedSchedule.objects.create(
            clocked_time=timezone.now() + timedelta(days=1)
        ),
        add={
            "clocked_time_0": (timezone.now() + timedelta(days=3)).date().isoformat(),
            "clocked_time_1": "06:00:00",
        },
        change={"clocked_time_1": "07:00:00"},
        added="schedule.created",
        changed="schedule.updated",
        deleted="schedule.deleted",
    ),
    "integrations.WebhookSubscription": Case(
        existing=a_webhook,
        add={
            "name": "walked channel",
            "kind": "slack",
            "new_url": "https://hooks.slack.com/services/T0/B0/walk",
            "event_types": ["change_request.waiting"],
        },
        change={"name": "walk hook renamed"},
        added="webhook.created",
        changed="webhook.updated",
        actions={"rotate_secret": "webhook.secret_rotated", "deactivate": "webhook.deactivated"},
    ),
    "integrations.ChangeTicket": Case(existing=a_change_ticket),
    "integrations.TicketTransition": Case(existing=a_ticket_transition),
    "axes.AccessAttempt": Case(existing=an_access_attempt, deleted="user.lockout_cleared"),
    "axes.AccessLog": Case(existing=lambda world: AccessLog.objects.create(**SIGN_IN)),
    "axes.AccessFailureLog": Case(
        existing=lambda world: AccessFailureLog.objects.create(**SIGN_IN, locked_out=True)
    ),
}


def form_data(response) -> dict:
    """What a browser would post back: the rendered form's values, its inlines' included."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for bound in form:
            value, widget = bound.value(), bound.field.widget
            if isinstance(widget, MultiWidget):
                for index, part in enumerate(widget.decompress(value)):
                    if part is not None:
                        data[f"{bound.html_name}_{index}"] = str(part)
            elif isinstance(widget, CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(item) for item in value]
            elif value is not None:
                data[bound.html_name] = str(value)
    return data


def form_errors(response) -> object:
    if response.context is None or "adminform" not in response.context:
        return response.status_code
    return response.context["adminform"].form.errors


def filled(data: dict, overrides: dict) -> dict:
    """`data` with `overrides` applied; a False unticks a box, a None empties a field."""
    data = dict(data)
    for name, value in overrides.items():
        if value is False or value is None:
            data.pop(name, None)
        else:
            data[name] = "on" if value is True else value
    return data


@pytest.fixture
def world(org, envs, version, approved, ci):
    return {"org": org, "envs": envs, "version": version, "approved": approved, "ci": ci}


def new_events(after_seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=after_seq).values_list("action", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_every_registered_admin_has_a_case():
    assert sorted(CASES) == REGISTERED


@pytest.mark.parametrize("label", REGISTERED)
def test_every_admin_write_writes_its_audit_event(label, world, login, administrator):
    model = next(m for m in admin.site._registry if m._meta.label == label)
    model_admin, case = admin.site._registry[model], CASES[label]
    client = login(administrator)
    request = RequestFactory().get("/admin/")
    request.user = administrator
    obj = case.existing(world)
    assert obj is not None and obj.pk is not None, f"{label}: the case made nothing to change"
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    add_url = reverse(f"{name}_add")
    change_url = reverse(f"{name}_change", args=[obj.pk])
    delete_url = reverse(f"{name}_delete", args=[obj.pk])

    if model_admin.has_add_permission(request):
        assert case.added, f"{label}: the admin may add, but the case expects no event"
        before = last_seq()
        page = client.get(add_url)
        overrides = case.add(obj) if callable(case.add) else case.add
        response = client.post(add_url, filled(form_data(page), overrides))
        assert response.status_code == 302, f"{label} add: {form_errors(response)}"
        assert case.added in new_events(before), f"{label}: adding wrote {new_events(before)}"
    else:
        before = last_seq()
        assert client.post(add_url, {}).status_code == 403, f"{label}: add not refused"
        assert new_events(before) == []

    if model_admin.has_change_permission(request, obj):
        assert case.changed, f"{label}: the admin may change, but the case expects no event"
        before = last_seq()
        page = client.get(change_url)
        response = client.post(change_url, filled(form_data(page), case.change))
        assert response.status_code == 302, f"{label} change: {form_errors(response)}"
        assert case.changed in new_events(before), f"{label}: changing wrote {new_events(before)}"
    else:
        before = last_seq()
        assert client.post(change_url, {}).status_code == 403, f"{label}: change not refused"
        assert new_events(before) == []

    for action, event in case.actions.items():
        assert action in model_admin.get_actions(request), f"{label}: no action {action}"
        if event is None:
            continue
        before = last_seq()
        changelist = reverse(f"{name}_changelist")
        client.post(changelist, {"action": action, "_selected_action": [obj.pk]})
        assert event in new_events(before), f"{label} {action}: wrote {new_events(before)}"
    assert set(model_admin.get_actions(request)) == set(case.actions), label

    if model_admin.has_delete_permission(request, obj):
        assert case.deleted, f"{label}: the admin may delete, but the case expects no event"
        before = last_seq()
        response = client.post(delete_url, {"post": "yes"})
        assert response.status_code == 302, f"{label}: delete answered {response.status_code}"
        assert not model.objects.filter(pk=obj.pk).exists()
        assert case.deleted in new_events(before), f"{label}: deleting wrote {new_events(before)}"
    else:
        before = last_seq()
        assert client.post(delete_url, {"post": "yes"}).status_code == 403, label
        assert new_events(before) == []
        assert model.objects.filter(pk=obj.pk).exists()

    assert not LogEntry.objects.exists(), "the admin wrote django_admin_log; the trail is the log"


def test_a_users_flags_groups_and_permissions_are_recorded_as_their_final_sets(
    login, administrator, org
):
    user = organisation.user_create(actor=None, username="newcomer", password=None)
    auditors, reviewers = Group.objects.create(name="auditors"), Group.objects.create(name="rev")
    user.groups.add(reviewers)
    permission = Permission.objects.get(codename="view_auditevent")
    client = login(administrator)
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = filled(
        form_data(client.get(url)),
        {
            "is_superuser": True,
            "is_active": False,
            "groups": [str(auditors.pk)],
            "user_permissions": [str(permission.pk)],
        },
    )
    assert client.post(url, data).status_code == 302
    event = AuditEvent.objects.filter(action="user.updated").latest("seq")
    assert event.actor_name == "admin"
    assert event.object_id == str(user.pk)
    assert event.data == {
        "user": "newcomer",
        "before": {
            "is_active": True,
            "is_superuser": False,
            "groups": ["rev"],
            "user_permissions": [],
        },
        "after": {
            "is_active": False,
            "is_superuser": True,
            "groups": ["auditors"],
            "user_permissions": ["audit.view_auditevent"],
        },
    }
    user.refresh_from_db()
    assert [g.name for g in user.groups.all()] == ["auditors"]
    assert "pbkdf2" not in event.body and user.password not in event.body


def test_setting_a_password_in_the_admin_is_audited_without_the_password(
    login, administrator, org, password
):
    user = organisation.user_create(actor=None, username="newcomer", password=None)
    client = login(administrator)
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    new_password = "Tr1cky-but-long-enough"
    response = client.post(
        url,
        {"usable_password": "true", "password1": new_password, "password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    event = AuditEvent.objects.filter(action="user.password_set").latest("seq")
    assert (event.actor_name, event.object_id) == ("admin", str(user.pk))
    assert event.data == {"user": "newcomer", "password_usable": True}
    assert new_password not in event.body and user.password not in event.body

    mismatch = client.post(
        url, {"usable_password": "true", "password1": new_password, "password2": "other"}
    )
    assert mismatch.status_code == 200
    assert AuditEvent.objects.filter(action="user.password_set").count() == 1


def test_deleting_a_user_removes_their_memberships_through_the_audited_service(
    login, administrator, org
):
    user = organisation.user_create(actor=None, username="leaver", password=None)
    organisation.membership_set(actor=None, user=user, team=org["model-risk"], is_approver=True)
    client = login(administrator)
    response = client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username="leaver").exists()
    removed = AuditEvent.objects.filter(action="membership.removed").latest("seq")
    deleted = AuditEvent.objects.filter(action="user.deleted").latest("seq")
    assert removed.seq < deleted.seq
    assert removed.data["roles_before"] == ["member", "approver"]
    assert deleted.object_repr == "leaver"
    assert "is_active" in deleted.data
