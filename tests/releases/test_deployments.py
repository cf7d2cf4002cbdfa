import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from portal.exceptions import Conflict, RuleDenied
from releases.builders import deploy
from releases.models import DeploymentStatus, GateDecision, UnauthorisedChange
from releases.selectors.live import live_deployment
from releases.services.deployments import (
    GateDenied,
    deployment_record_result,
    deployment_start,
    health_check_record,
    unauthorised_change_review,
)

pytestmark = pytest.mark.django_db


def test_dev_needs_no_change_request(envs, builds, ci, clock, fraud):
    deployment, created = deployment_start(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], now=clock.now
    )
    assert created
    assert deployment.status == DeploymentStatus.STARTED
    assert deployment.started_by_service == ci.account
    assert deployment.started_by_name == "ci-pipeline"
    assert live_deployment(environment=envs["dev"], model=fraud) is None

    decision = GateDecision.objects.get(deployment=deployment)
    assert decision.allowed
    assert decision.policy == envs["dev"].policies.get()
    started = AuditEvent.objects.filter(action="deployment.started").last()
    assert started.data["gate_decision"] == decision.pk
    assert started.data["policy_version"] == 1

    clock.advance(minutes=5)
    done = deployment_record_result(
        actor=ci.account, deployment=deployment, status="succeeded", now=clock.now
    )
    assert done.succeeded_at == clock.now == done.finished_at
    assert live_deployment(environment=envs["dev"], model=fraud) == done
    assert AuditEvent.objects.filter(action="deployment.succeeded").last().data["version"] == "1.0"


def test_a_failed_deployment_is_never_live(envs, builds, ci, clock, fraud):
    failed = deploy(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.0"],
        clock=clock,
        succeed=False,
    )
    assert failed.status == DeploymentStatus.FAILED
    assert failed.succeeded_at is None
    assert live_deployment(environment=envs["dev"], model=fraud) is None


def test_reporting_a_result_twice(envs, builds, ci, clock):
    deployment = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    events = AuditEvent.objects.count()
    again = deployment_record_result(actor=ci.account, deployment=deployment, status="succeeded")
    assert again.succeeded_at == deployment.succeeded_at
    assert AuditEvent.objects.count() == events
    with pytest.raises(Conflict) as error:
        deployment_record_result(actor=ci.account, deployment=deployment, status="failed")
    assert error.value.code == "deployment_finished"
    with pytest.raises(ValidationError):
        deployment_record_result(actor=ci.account, deployment=deployment, status="rolled_back")


def test_a_retried_start_with_the_same_pipeline_returns_the_same_record(envs, builds, ci, clock):
    url = "https://ci.example.com/pipelines/7"
    first, created = deployment_start(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.0"],
        pipeline_url=url,
        now=clock.now,
    )
    again, created_again = deployment_start(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], pipeline_url=url
    )
    assert created and not created_again and again == first
    with pytest.raises(Conflict) as error:
        deployment_start(
            actor=ci.account,
            environment=envs["dev"],
            model_version=builds["1.1"],
            pipeline_url=url,
        )
    assert error.value.code == "pipeline_url_reused"


def test_who_may_start_and_report(envs, builds, service_caller, requester, auditor, clock):
    reader = service_caller("gate:read")
    with pytest.raises(RuleDenied) as error:
        deployment_start(actor=reader.account, environment=envs["dev"], model_version=builds["1.0"])
    assert error.value.code == "missing_scope"
    with pytest.raises(RuleDenied) as error:
        deployment_start(actor=auditor, environment=envs["dev"], model_version=builds["1.0"])
    assert error.value.code == "not_allowed_to_deploy"

    # A member of the owning team may deploy to dev; only they or the pipeline report the result.
    deployment, _ = deployment_start(
        actor=requester, environment=envs["dev"], model_version=builds["1.0"], now=clock.now
    )
    assert deployment.started_by_user == requester
    with pytest.raises(RuleDenied) as error:
        deployment_record_result(actor=auditor, deployment=deployment, status="succeeded")
    assert error.value.code == "not_allowed_to_report"
    deployment_record_result(actor=requester, deployment=deployment, status="succeeded")


def test_a_refusal_is_recorded_with_its_reasons(envs, builds, ci, clock):
    events = AuditEvent.objects.count()
    with pytest.raises(GateDenied) as error:
        deployment_start(actor=ci.account, environment=envs["prod"], model_version=builds["1.0"])
    assert "no_approved_change" in [reason.code for reason in error.value.reasons]
    assert error.value.status_code == 403
    decision = GateDecision.objects.get()
    assert not decision.allowed and decision.deployment is None
    assert decision.policy == envs["prod"].policies.get()
    refused = AuditEvent.objects.filter(seq__gt=events, action="deployment.refused").get()
    assert {r["code"] for r in refused.data["reasons"]} >= {"no_approved_change"}


def test_health_checks_flag_a_digest_the_ledger_did_not_put_there(
    envs, builds, ci, clock, release_approver, requester
):
    deployment = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    health_check_record(
        deployment=deployment,
        ok=True,
        latency_ms=12,
        status_code=200,
        reported_sha256=builds["1.0"].artifact_sha256,
        now=clock.now,
    )
    assert not UnauthorisedChange.objects.exists()

    events = AuditEvent.objects.count()
    stranger = builds["1.1"].artifact_sha256
    for _ in range(2):
        health_check_record(deployment=deployment, ok=True, reported_sha256=stranger)
    flag = UnauthorisedChange.objects.get()
    assert flag.expected_sha256 == builds["1.0"].artifact_sha256
    assert flag.reported_sha256 == stranger
    detected = AuditEvent.objects.filter(seq__gt=events)
    assert [e.action for e in detected] == ["deployment.unauthorised_change_detected"]
    assert deployment.health_checks.count() == 3

    with pytest.raises(RuleDenied) as error:
        unauthorised_change_review(actor=requester, flag=flag, note="Looked.")
    assert error.value.code == "not_allowed_to_review"


def test_an_administrator_clears_the_flag_with_a_note(envs, builds, ci, clock, administrator):
    deployment = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    health_check_record(
        deployment=deployment, ok=True, reported_sha256=builds["1.1"].artifact_sha256
    )
    flag = UnauthorisedChange.objects.get()
    with pytest.raises(ValidationError):
        unauthorised_change_review(actor=administrator, flag=flag, note=" ")
    reviewed = unauthorised_change_review(
        actor=administrator, flag=flag, note="Hotfix by the platform team, now redeployed."
    )
    assert reviewed.reviewed_by == administrator and reviewed.reviewed_at
    event = AuditEvent.objects.filter(action="deployment.unauthorised_change_reviewed").get()
    assert event.data["note"].startswith("Hotfix")
    with pytest.raises(Conflict):
        unauthorised_change_review(actor=administrator, flag=reviewed, note="Again.")
