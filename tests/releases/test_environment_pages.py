"""The environment pages: what runs where and who put it there, as of any moment; rollback for
those allowed; query counts that do not grow with the number of models."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import Scope
from portal.templatetags.gatehouse_time import when
from registry.builders import build_register
from releases.builders import file_change, release_to_test
from releases.models import DeploymentKind, UnauthorisedChange
from releases.selectors.enforcement import gate_enforcement
from releases.selectors.live import live_deployment
from releases.services import policy
from releases.services.deployments import health_check_record

pytestmark = pytest.mark.django_db
ADMISSION = "/api/v1/platforms/kubernetes/admission/"


@pytest.fixture
def history(envs, builds, ci, clock, requester, peer):
    first = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    second = release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer)
    health_check_record(deployment=second, ok=True, latency_ms=42, status_code=200)
    return first, second


def test_the_list_shows_each_environment(login, auditor, history):
    page = login(auditor).get("/releases/environments/").content.decode()
    for name in ("dev", "test", "prod"):
        assert f"/releases/environments/{name}/" in page


def test_the_page_shows_what_is_live_and_who_put_it_there(login, auditor, history):
    _, second = history
    page = login(auditor).get("/releases/environments/test/").content.decode()
    version = second.model_version
    assert "fraud-score" in page
    assert version.short_sha in page
    assert version.artifact_sha256[:12] in page
    assert "ci-pipeline" in page
    assert second.change_request.number in page
    assert "Per Eriksen" in page  # the peer reviewer who signed it
    assert "42 ms" in page
    assert "Roll back" not in page  # an auditor may not


def test_the_page_answers_for_a_past_moment(login, auditor, history):
    first, second = history
    client = login(auditor)
    moment = (second.succeeded_at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get("/releases/environments/test/", {"at": moment}).content.decode()
    assert first.model_version.short_sha in page
    assert second.model_version.short_sha not in page
    before = (first.started_at - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get("/releases/environments/test/", {"at": before}).content.decode()
    assert "Nothing was live in test at that moment" in page
    refused = client.get("/releases/environments/test/", {"at": "soon"})
    assert refused.status_code == 400
    assert "soon&#x27; is not a real date and time" in refused.content.decode()


def test_rollback_from_the_page(login, requester, history, envs, fraud, django_clock):
    first, _ = history
    client = login(requester)
    page = client.get("/releases/environments/test/").content.decode()
    assert "Roll back" in page
    url = "/releases/environments/test/models/fraud-score/rollback/"
    assert client.post(url, {"reason": ""}).status_code == 400
    response = client.post(url, {"reason": "Scores drift."})
    assert response.status_code == 302
    live = live_deployment(environment=envs["test"], model=fraud)
    assert live.kind == DeploymentKind.ROLLBACK and live.model_version == first.model_version


def test_a_rollback_post_by_someone_not_allowed_is_403(login, auditor, history, envs, fraud):
    _, second = history
    response = login(auditor).post(
        "/releases/environments/test/models/fraud-score/rollback/", {"reason": "Because."}
    )
    assert response.status_code == 403
    assert b"Only the change&#x27;s owner" in response.content
    assert live_deployment(environment=envs["test"], model=fraud) == second


def test_unauthorised_changes_are_flagged_and_reviewed(login, administrator, auditor, history):
    _, second = history
    health_check_record(
        deployment=second, ok=True, reported_sha256="f" * 64, detail="served digest"
    )
    page = login(auditor).get("/releases/environments/test/").content.decode()
    assert "unauthorised digest" in page and "Clear the flag" not in page
    flag = UnauthorisedChange.objects.get()
    client = login(administrator)
    assert "Clear the flag" in client.get("/releases/environments/test/").content.decode()
    response = client.post(
        f"/releases/unauthorised-changes/{flag.pk}/review/", {"note": "Platform hotfix."}
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.reviewed_by == administrator


def test_the_deployment_page(login, auditor, history):
    _, second = history
    page = login(auditor).get(f"/releases/deployments/{second.pk}/").content.decode()
    assert second.model_version.commit_sha in page
    assert "policy v1" in page


def fill(envs, ci, clock, requester, peer, start, count):
    for n in range(start, start + count):
        model = f"model-{n:02d}"
        release_to_test(envs, build_register(model, "1.0"), ci.account, clock, requester, peer)
        deployment = release_to_test(
            envs, build_register(model, "1.1"), ci.account, clock, requester, peer
        )
        health_check_record(deployment=deployment, ok=n % 2 == 0, latency_ms=n)


def test_the_page_costs_the_same_with_3_and_30_models(
    login, requester, envs, ci, clock, peer, monkeypatch
):
    client = login(requester)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/releases/environments/test/")
        assert response.status_code == 200
        return len(captured.captured_queries)

    fill(envs, ci, clock, requester, peer, 0, 3)
    few = queries()
    fill(envs, ci, clock, requester, peer, 3, 27)
    many = queries()
    page = client.get("/releases/environments/test/").content.decode()
    assert page.count("Roll back") == 30
    assert few == many


def test_the_change_request_page_shows_the_gate_and_the_soak(
    login, requester, envs, builds, ci, clock, peer, prod_signers
):
    in_test = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    earliest = in_test.succeeded_at + timedelta(days=7)
    change = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now + timedelta(days=8),
    )
    page = login(requester).get(f"/releases/change-requests/{change.number}/").content.decode()
    assert "Deployment gate" in page
    assert "outside_window" in page and "soak_not_met" in page
    assert earliest.strftime("%Y-%m-%d %H:%M") in page
    assert f"/releases/deployments/{in_test.pk}/" in page


def test_the_filing_form_shows_the_soak_evidence(login, requester, envs, builds):
    client = login(requester)
    page = client.get(
        "/releases/change-requests/new/",
        {"model_version": builds["1.1"].pk, "environment": "prod"},
    ).content.decode()
    assert "never live in test" in page


def test_an_unknown_environment_is_404(login, auditor, envs):
    client = login(auditor)
    assert client.get("/releases/environments/staging/").status_code == 404
    assert client.get("/releases/environments/d%00ev/").status_code == 404


def _section(page: str, label: str) -> str:
    start = page.index(f'aria-label="{label}"')
    return page[start : page.index("</section>", start)]


def test_the_page_says_how_the_gate_is_enforced_and_when_each_way_last_asked(
    login, auditor, envs, builds, ci, requester, peer, django_clock, service_caller
):
    client = login(auditor)
    enforced = _section(
        client.get("/releases/environments/test/").content.decode(), "How the gate is enforced"
    )
    assert enforced.count("never") == 5
    assert "no governed namespace" in enforced
    assert "Only the pipeline's own call guards test" in enforced

    started_at = django_clock.now
    release_to_test(envs, builds["1.0"], ci.account, django_clock, requester, peer)
    policy.environment_update(
        actor=None,
        environment=envs["test"],
        rank=2,
        description="",
        admission_namespaces="fraud-test",
    )
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "namespace": "fraud-test",
            "operation": "CREATE",
            "object": {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {}}},
        },
    }
    django_clock.advance(minutes=30)
    api_server = service_caller(Scope.GATE_READ).client()
    assert api_server.post(ADMISSION, body, format="json").status_code == 200

    enforced = _section(
        client.get("/releases/environments/test/").content.decode(), "How the gate is enforced"
    )
    assert "fraud-test" in enforced
    assert when(started_at) in enforced  # the pipeline's deployment start
    assert when(django_clock.now) in enforced  # the admission review
    assert enforced.count("never") == 3  # the gate check, GitLab, GitHub
    assert "Only the pipeline" not in enforced


def test_when_each_way_last_asked_is_one_query(envs, django_assert_num_queries):
    with django_assert_num_queries(1):
        ways = gate_enforcement(environment=envs["prod"])
    assert [way.name for way in ways] == ["Pipeline call", "Platform approval", "Admission"]
