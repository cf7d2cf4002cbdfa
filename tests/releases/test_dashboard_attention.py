from datetime import timedelta

import pytest
from django.utils import timezone

from registry.builders import build_register
from releases.builders import Clock, deploy, emergency_deployed
from releases.services.deployments import health_check_record

pytestmark = pytest.mark.django_db


def test_an_overdue_retrospective_is_flagged_on_everyones_dashboard(
    envs, ci, requester, change_manager, auditor, login
):
    long_ago = Clock(now=timezone.now().replace(microsecond=0) - timedelta(days=5))
    emergency = emergency_deployed(
        requester=requester,
        authoriser=change_manager,
        pipeline=ci.account,
        model_version=build_register("payments", "9.9"),
        environment=envs["prod"],
        clock=long_ago,
    )
    page = login(auditor).get("/").content.decode()
    assert "Needs attention" in page
    assert "retrospective overdue" in page
    assert emergency.number in page
    assert "Model Risk" in page


def test_an_unreviewed_unauthorised_change_is_flagged(envs, ci, clock, auditor, login):
    build = build_register("churn", "1.0")
    live = deploy(actor=ci.account, environment=envs["dev"], model_version=build, clock=clock)
    health_check_record(deployment=live, ok=True, reported_sha256="e" * 64)
    page = login(auditor).get("/").content.decode()
    assert "unauthorised change" in page
    assert "churn in dev" in page


def test_a_quiet_day_shows_no_attention_panel(org, auditor, login):
    assert "Needs attention" not in login(auditor).get("/").content.decode()
