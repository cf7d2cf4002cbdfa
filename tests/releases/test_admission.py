"""Kubernetes/OpenShift admission (issue 21): real AdmissionReviews (shaped as in the Kubernetes
documentation, kept in tests/fixtures/kubernetes/) sent to the webhook as the API server sends
them. In a governed namespace a workload runs only with the digest the ledger deployed there;
a deployment that skipped the pipeline's gate call is still stopped."""

import copy
import json
from functools import cache
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from portal.exceptions import Conflict
from portal.models import Scope
from releases.builders import file_change, release_to_test
from releases.models import GateDecision, GatePurpose
from releases.services.deployments import deployment_rollback, deployment_start
from releases.services.policy import environment_update
from releases.states import Kind

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
URL = "/api/v1/platforms/kubernetes/admission/"
FOREIGN = "9" * 64


@cache
def _fixture(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def review(name: str, *, namespace: str = "", digest: str = "", image: str = "") -> dict:
    """A fixture review, moved to `namespace`, claiming `digest` (annotation) or running
    `image` (a digest pinned on the model's container)."""
    body = json.loads(_fixture(name))
    request = body["request"]
    obj = request["object"]
    pod = obj if obj["kind"] == "Pod" else obj["spec"].get("template", {"metadata": {}})
    if namespace:
        request["namespace"] = namespace
    for meta in (obj["metadata"], pod["metadata"]):
        if digest and "gatehouse.io/artifact-sha256" in meta.get("annotations", {}):
            meta["annotations"]["gatehouse.io/artifact-sha256"] = f"sha256:{digest}"
    if image:
        pod["spec"]["containers"][-1]["image"] = f"registry.bank.example/ml/x@sha256:{image}"
    return body


@pytest.fixture
def governed(envs):
    """test governs the namespace fraud-test."""
    environment_update(
        actor=None,
        environment=envs["test"],
        rank=envs["test"].rank,
        description=envs["test"].description,
        admission_namespaces="fraud-test",
    )
    return envs


@pytest.fixture
def api_server(service_caller):
    """The cluster's API server, with the token of a service account that may ask the gate."""
    return service_caller(Scope.GATE_READ).client()


@pytest.fixture
def live_11(governed, builds, ci, django_clock, requester, peer):
    """1.0, then 1.1 released to test through the pipeline: 1.1 is live (on Django's clock,
    which the webhook reads)."""
    clock = django_clock
    release_to_test(governed, builds["1.0"], ci.account, clock, requester, peer)
    return release_to_test(governed, builds["1.1"], ci.account, clock, requester, peer)


def ask(client, body) -> dict:
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    return answer["response"]


def codes(answer: dict) -> list[str]:
    message = answer["status"]["message"]
    return [part.split("]")[0] for part in message.split("[")[1:]]


def test_the_live_digest_is_allowed_and_the_answer_recorded(api_server, live_11, builds):
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    answer = ask(
        api_server,
        review("deployment_create", digest=builds["1.1"].artifact_sha256),
    )
    assert answer["allowed"] is True and "status" not in answer
    decision = GateDecision.objects.get(purpose=GatePurpose.ADMISSION)
    assert decision.allowed and decision.environment.name == "test"
    assert decision.model_version == builds["1.1"]
    assert decision.question["ledger_deployment"] == live_11.pk
    assert decision.question["requested_by"] == "system:serviceaccount:fraud-test:deployer"
    event = AuditEvent.objects.get(seq__gt=seq, action="gate.admission_reviewed")
    assert event.environment == "test" and event.data["gate_decision"] == decision.pk


def test_a_replaced_digest_is_denied(api_server, live_11, builds):
    answer = ask(api_server, review("deployment_create", digest=builds["1.0"].artifact_sha256))
    assert answer["allowed"] is False and answer["status"]["code"] == 403
    assert codes(answer)[0] == "not_in_ledger"


def test_a_foreign_digest_is_denied_with_the_reasons(api_server, live_11):
    answer = ask(api_server, review("deployment_create", digest=FOREIGN))
    assert answer["allowed"] is False
    assert codes(answer)[:2] == ["not_in_ledger", "unknown_version"]
    assert "999999999999" in answer["status"]["message"]
    decision = GateDecision.objects.get(purpose=GatePurpose.ADMISSION)
    assert not decision.allowed
    assert [reason["code"] for reason in decision.reasons] == codes(answer)


def test_a_deployment_that_skips_the_pipelines_gate_call_is_still_stopped(
    api_server, governed, builds, approved_for_test, live_11
):
    # 1.2 is approved for test, but nobody started its deployment through Gatehouse: the
    # pipeline went straight to kubectl apply.
    change = approved_for_test("1.2")
    answer = ask(api_server, review("deployment_create", digest=builds["1.2"].artifact_sha256))
    assert answer["allowed"] is False
    assert codes(answer) == ["not_in_ledger"]
    assert change.number in answer["status"]["message"]
    assert "POST /api/v1/deployments/" in answer["status"]["message"]


def test_a_build_never_approved_is_stopped_with_the_gates_reasons(api_server, live_11, builds):
    answer = ask(api_server, review("deployment_create", digest=builds["1.2"].artifact_sha256))
    assert codes(answer) == ["not_in_ledger", "no_approved_change"]


def test_the_pods_of_a_deployment_in_progress_are_allowed(
    api_server, live_11, builds, ci, approved_for_test, clock
):
    change = approved_for_test("1.2")
    deployment_start(
        actor=ci.account, environment="test", model_version=builds["1.2"], change_request=change
    )
    # A pod of the ReplicaSet: no annotation, the model's image pinned by digest beside a
    # sidecar's.
    answer = ask(api_server, review("pod_create", image=builds["1.2"].artifact_sha256))
    assert answer["allowed"] is True
    decision = GateDecision.objects.get(purpose=GatePurpose.ADMISSION)
    assert decision.model_version == builds["1.2"]


def test_a_failed_attempt_is_not_admitted(
    api_server, governed, live_11, builds, ci, clock, requester, peer
):
    release_to_test(governed, builds["1.2"], ci.account, clock, requester, peer, succeed=False)
    answer = ask(api_server, review("pod_create", image=builds["1.2"].artifact_sha256))
    assert answer["allowed"] is False and codes(answer)[0] == "not_in_ledger"


def test_after_a_rollback_only_the_version_put_back_runs(api_server, live_11, builds, ci):
    deployment_rollback(actor=ci.account, environment="test", model="fraud-score", reason="Drift.")
    assert not ask(api_server, review("pod_create", image=builds["1.1"].artifact_sha256))["allowed"]
    assert ask(api_server, review("pod_create", image=builds["1.0"].artifact_sha256))["allowed"]


def test_an_image_without_a_pinned_digest_is_denied(api_server, live_11):
    body = review("pod_create")
    for container in body["request"]["object"]["spec"]["containers"]:
        container["image"] = "registry.bank.example/ml/fraud-score:latest"
    answer = ask(api_server, body)
    assert codes(answer) == ["no_digest"]


def test_a_cronjob_is_read_through_its_job_template(api_server, live_11, builds):
    body = review("cronjob_create")
    template = body["request"]["object"]["spec"]["jobTemplate"]["spec"]["template"]
    template["metadata"]["annotations"]["gatehouse.io/artifact-sha256"] = builds[
        "1.1"
    ].artifact_sha256
    assert ask(api_server, body)["allowed"] is True


def test_an_unlabelled_workload_outside_governed_namespaces_is_allowed(api_server, governed):
    answer = ask(api_server, review("deployment_unlabelled"))
    assert answer["allowed"] is True
    decision = GateDecision.objects.get(purpose=GatePurpose.ADMISSION)
    assert decision.allowed and decision.environment is None
    assert decision.question["governed"] is False


def test_an_unlabelled_workload_inside_a_governed_namespace_is_denied(api_server, governed):
    answer = ask(api_server, review("deployment_unlabelled", namespace="fraud-test"))
    assert answer["allowed"] is False and codes(answer) == ["unlabelled_workload"]
    assert GateDecision.objects.get(purpose=GatePurpose.ADMISSION).environment.name == "test"


def test_a_labelled_workload_of_an_unknown_model_is_denied(api_server, governed):
    body = review("deployment_create")
    body["request"]["object"]["metadata"]["labels"]["gatehouse.io/model"] = "nobody-knows"
    assert "unknown_model" in codes(ask(api_server, body))


def test_an_authorised_emergency_change_lets_its_build_in_and_says_so(
    api_server, live_11, builds, requester, change_manager
):
    change = file_change(
        requester=requester,
        model_version=builds["1.2"],
        environment=live_11.environment,
        signers=[change_manager],
        kind=Kind.EMERGENCY,
    )
    answer = ask(api_server, review("deployment_create", digest=builds["1.2"].artifact_sha256))
    assert answer["allowed"] is True
    assert change.number in answer["warnings"][0]
    decision = GateDecision.objects.get(purpose=GatePurpose.ADMISSION)
    assert decision.warnings[0]["code"] == "break_glass" and decision.change_request == change


@pytest.mark.parametrize(
    "damage",
    [
        lambda request: request.update(object="not an object"),
        lambda request: request["object"]["spec"]["template"]["spec"].update(containers="scorer"),
        lambda request: request["object"]["metadata"]["labels"].update(bad=7),
        lambda request: request.update(namespace="fraud\x00test"),
        lambda request: request.pop("object"),
    ],
)
def test_a_malformed_review_is_denied_not_a_server_error(api_server, governed, damage):
    body = review("deployment_create")
    damage(body["request"])
    answer = ask(api_server, body)
    assert answer["allowed"] is False and answer["status"]["code"] == 400
    assert codes(answer) == ["malformed_review"]
    assert GateDecision.objects.filter(purpose=GatePurpose.ADMISSION, allowed=False).exists()


def test_another_api_version_is_denied_as_malformed(api_server, governed):
    body = review("deployment_create")
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    assert codes(ask(api_server, body)) == ["malformed_review"]


@pytest.mark.parametrize("payload", [b"{not json", b"[]", b'{"request": {"uid": 7}}', b"\xff"])
def test_a_body_without_a_readable_uid_is_a_400(api_server, governed, payload):
    response = api_server.post(URL, payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_admission_review"


def test_the_webhook_needs_a_token_with_gate_read(client, service_caller, governed):
    body = review("deployment_create")
    assert client.post(URL, body, content_type="application/json").status_code == 401
    registry_only = service_caller(Scope.REGISTRY_WRITE).client()
    assert registry_only.post(URL, body, format="json").status_code == 403


def test_a_namespace_is_governed_by_one_environment(governed):
    prod = governed["prod"]
    with pytest.raises(Conflict) as refused:
        environment_update(
            actor=None,
            environment=prod,
            rank=prod.rank,
            description="",
            admission_namespaces="fraud-prod, fraud-test",
        )
    assert refused.value.code == "namespace_governed_elsewhere"
    with pytest.raises(ValidationError):
        environment_update(
            actor=None,
            environment=prod,
            rank=prod.rank,
            description="",
            admission_namespaces="Bad_NS",
        )
    saved = environment_update(
        actor=None,
        environment=prod,
        rank=prod.rank,
        description="",
        admission_namespaces="fraud-prod  scoring-prod,fraud-prod",
    )
    assert saved.admission_namespaces == "fraud-prod, scoring-prod"


def test_an_update_that_changes_no_build_passes_and_one_that_does_is_judged(
    api_server, live_11, builds
):
    # The deployment controller scales down the ReplicaSet of 1.0, replaced since.
    body = review("deployment_create", digest=builds["1.0"].artifact_sha256)
    request = body["request"]
    request["operation"], request["oldObject"] = "UPDATE", copy.deepcopy(request["object"])
    request["object"]["spec"]["replicas"] = 0
    assert ask(api_server, body)["allowed"] is True
    assert GateDecision.objects.get(purpose=GatePurpose.ADMISSION).question["claims_unchanged"]
    # kubectl edit puts 1.0 back in the template of the Deployment running 1.1.
    request["oldObject"] = review("deployment_create", digest=builds["1.1"].artifact_sha256)[
        "request"
    ]["object"]
    answer = ask(api_server, body)
    assert answer["allowed"] is False and codes(answer)[0] == "not_in_ledger"
