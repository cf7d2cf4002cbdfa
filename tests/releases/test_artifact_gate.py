"""Issue 20 at deployment start: the artifact is looked at again in its store; an object replaced
since registration is refused (`artifact_changed`), and a policy that requires verified artifacts
refuses a build no store has ever confirmed (`artifact_unverified`)."""

import hashlib

import pytest

from audit.actions import AuditAction
from audit.models import AuditEvent
from registry.builders import build_register
from registry.models import ArtifactCheck, ArtifactCheckPurpose
from releases.services import policy
from releases.services.deployments import GateDenied, deployment_start
from releases.services.gate import gate_evaluate

pytestmark = pytest.mark.django_db

BODY = b"fraud-score 1.0 model.tar.gz"
DIGEST = hashlib.sha256(BODY).hexdigest()


def codes(answer) -> list[str]:
    return [reason.code for reason in answer.reasons]


def require_verified(environment) -> None:
    current = environment.policies.order_by("-version").first()
    policy.environment_policy_change(
        actor=None,
        environment=environment,
        approval_teams=list(current.approval_teams.all()),
        needs_change_request=current.needs_change_request,
        needs_peer_review=current.needs_peer_review,
        requires_verified_artifact=True,
    )


@pytest.fixture
def stored_build(envs, s3_store):
    uri = s3_store.put("fraud-score/1.0/model.tar.gz", BODY)
    build = build_register("fraud-score", "1.0", artifact_uri=uri, artifact_sha256=DIGEST)
    assert build.latest_artifact_check.outcome == "verified"
    return build


def test_an_unchanged_artifact_deploys_and_the_look_is_recorded(stored_build, envs, ci):
    _, created = deployment_start(
        actor=ci.account, environment=envs["dev"], model_version=stored_build
    )
    assert created
    check = stored_build.artifact_checks.first()
    assert (check.purpose, check.outcome) == (ArtifactCheckPurpose.DEPLOYMENT_START, "verified")
    assert AuditEvent.objects.filter(action=AuditAction.MODEL_VERSION_ARTIFACT_CHECKED).exists()


def test_an_artifact_replaced_since_registration_is_refused(stored_build, envs, ci, s3_store):
    s3_store.put("fraud-score/1.0/model.tar.gz", b"retrained in place, same name")

    with pytest.raises(GateDenied) as denied:
        deployment_start(actor=ci.account, environment=envs["dev"], model_version=stored_build)

    assert "artifact_changed" in denied.value.answer.codes()
    assert stored_build.artifact_checks.first().outcome == "mismatch"
    # The gate API, asked afterwards without a store read, gives the same answer.
    answer = gate_evaluate(environment=envs["dev"], model="fraud-score", version="1.0")
    assert "artifact_changed" in codes(answer)


def test_a_store_down_at_deployment_start_does_not_hide_an_earlier_mismatch(
    stored_build, envs, ci, s3_store, settings
):
    s3_store.put("fraud-score/1.0/model.tar.gz", b"swapped")
    with pytest.raises(GateDenied):
        deployment_start(actor=ci.account, environment=envs["dev"], model_version=stored_build)
    # The store stops answering: the unverified look does not clear the mismatch.
    settings.GATEHOUSE_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    with pytest.raises(GateDenied) as denied:
        deployment_start(actor=ci.account, environment=envs["dev"], model_version=stored_build)
    assert "artifact_changed" in denied.value.answer.codes()
    assert stored_build.artifact_checks.first().outcome == "unverified"

    # Put back as registered, the store answering again: the build deploys.
    settings.GATEHOUSE_S3_ENDPOINT_URL = s3_store.endpoint
    s3_store.put("fraud-score/1.0/model.tar.gz", BODY)
    _, created = deployment_start(
        actor=ci.account, environment=envs["dev"], model_version=stored_build
    )
    assert created


def test_a_policy_requiring_verified_artifacts_refuses_an_unverified_build(envs, settings):
    settings.GATEHOUSE_ARTIFACT_STORES = []
    build = build_register("fraud-score", "1.0")
    assert build.latest_artifact_check.outcome == "unverified"
    assert "artifact_unverified" not in codes(
        gate_evaluate(environment=envs["dev"], model="fraud-score", version="1.0")
    )

    require_verified(envs["dev"])

    answer = gate_evaluate(environment=envs["dev"], model="fraud-score", version="1.0")
    assert "artifact_unverified" in codes(answer)
    assert not answer.allowed


def test_a_policy_requiring_verified_artifacts_takes_a_verified_build(stored_build, envs, ci):
    require_verified(envs["dev"])
    answer = gate_evaluate(environment=envs["dev"], model="fraud-score", version="1.0")
    assert "artifact_unverified" not in codes(answer)
    assert answer.allowed
    # An unverified look later (the store down) does not unverify what a store confirmed.
    ArtifactCheck.objects.create(
        model_version=stored_build,
        purpose=ArtifactCheckPurpose.DEPLOYMENT_START,
        outcome="unverified",
        store="s3",
        detail="S3 did not answer",
        checked_at=stored_build.created_at,
    )
    assert gate_evaluate(environment=envs["dev"], model="fraud-score", version="1.0").allowed
