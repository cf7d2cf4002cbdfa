"""The admin writes through the services: a policy edit is a new version, freezes are created
and cancelled, change requests and sign-offs are read-only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from releases.models import Environment, EnvironmentPolicy, FreezeWindow

pytestmark = pytest.mark.django_db


def test_admin_pages_load(login, administrator, approved):
    client = login(administrator)
    for url in [
        "/admin/releases/environment/",
        "/admin/releases/environment/add/",
        "/admin/releases/environmentpolicy/",
        "/admin/releases/environmentpolicy/add/",
        "/admin/releases/freezewindow/",
        "/admin/releases/freezewindow/add/",
        "/admin/releases/changerequest/",
        f"/admin/releases/changerequest/{approved.pk}/change/",
        "/admin/releases/signoff/",
    ]:
        assert client.get(url).status_code == 200, url


def test_creating_an_environment_goes_through_the_service(login, administrator, org):
    response = login(administrator).post(
        "/admin/releases/environment/add/",
        {
            "name": "staging",
            "rank": 5,
            "description": "",
            "policies-TOTAL_FORMS": 0,
            "policies-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    assert Environment.objects.filter(name="staging").exists()
    assert AuditEvent.objects.filter(action="environment.created", actor_name="admin").exists()


def test_saving_a_policy_writes_the_next_version(login, administrator, org, envs):
    current = EnvironmentPolicy.objects.get(environment=envs["prod"], version=1)
    url = f"/admin/releases/environmentpolicy/{current.pk}/change/"
    form = {
        "needs_change_request": "on",
        "needs_peer_review": "on",
        "approval_teams": [org["model-risk"].pk, org["release-management"].pk],
        "soak_source": envs["test"].pk,
        "soak_days": 10,
        "emergency_allowed": "on",
        "retrospective_hours": 48,
    }
    client = login(administrator)
    preview = client.post(url, form)
    assert preview.status_code == 200 and b'data-testid="policy-preview"' in preview.content
    assert EnvironmentPolicy.objects.filter(environment=envs["prod"]).count() == 1
    response = client.post(url, {**form, "_confirm_policy": "Save this policy version"})
    assert response.status_code == 302
    versions = EnvironmentPolicy.objects.filter(environment=envs["prod"]).order_by("version")
    old, new = list(versions)
    assert (old.version, old.soak_days, old.approval_teams.count()) == (1, 7, 3)
    assert (new.version, new.soak_days, new.retrospective_hours) == (2, 10, 48)
    assert {t.slug for t in new.approval_teams.all()} == {"model-risk", "release-management"}
    event = AuditEvent.objects.filter(action="environment_policy.changed").latest("seq")
    assert event.actor_name == "admin"
    assert event.data["before"]["soak_days"] == 7 and event.data["after"]["soak_days"] == 10


def test_freezes_are_created_and_cancelled_through_the_services(login, administrator, envs):
    client = login(administrator)
    start = timezone.now() + timedelta(days=30)
    response = client.post(
        "/admin/releases/freezewindow/add/",
        {
            "environment": envs["prod"].pk,
            "starts_at_0": start.strftime("%Y-%m-%d"),
            "starts_at_1": "00:00:00",
            "ends_at_0": (start + timedelta(days=7)).strftime("%Y-%m-%d"),
            "ends_at_1": "00:00:00",
            "reason": "Year-end",
        },
    )
    assert response.status_code == 302
    freeze = FreezeWindow.objects.get()
    assert freeze.created_by_name == "admin"
    client.post(
        "/admin/releases/freezewindow/",
        {"action": "cancel", "_selected_action": [freeze.pk]},
    )
    freeze.refresh_from_db()
    assert freeze.cancelled_at is not None
    assert AuditEvent.objects.filter(action="freeze_window.cancelled").exists()


def test_change_requests_cannot_be_edited_in_the_admin(login, administrator, approved):
    response = login(administrator).post(
        f"/admin/releases/changerequest/{approved.pk}/change/", {"title": "changed"}
    )
    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.title != "changed"
