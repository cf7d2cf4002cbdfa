"""The search box and `GET /api/v1/search/?q=`: a change request number, a model, a commit or
digest (or 7+ hex of one), a dataset or a person, answered with where it is live now, since when,
under which change request and who put it there, and its history; in a number of queries that
does not grow with the history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.builders import build_register, digest
from registry.services import dataset_version_register
from releases.builders import deploy, file_change

pytestmark = pytest.mark.django_db

API = "/api/v1/search/"


@pytest.fixture
def released(envs, builds, ci, clock, requester, peer, django_clock):
    """fraud-score 1.0 then 1.1 in test under changes the requester filed and the peer signed;
    1.0 trained on `transactions@2024-10`."""
    dataset_version_register(
        actor=None,
        name="transactions",
        version="2024-10",
        uri="s3://data/transactions/2024-10.parquet",
        sha256=digest("transactions-2024-10"),
    )
    trained = build_register(
        "fraud-score", "2.0", datasets=[{"name": "transactions", "version": "2024-10"}]
    )
    deployments = []
    for version in (builds["1.0"], trained):
        change = file_change(
            model_version=version,
            environment=envs["test"],
            requester=requester,
            signers=[peer],
            window_start=clock.now,
        )
        deployments.append(
            deploy(
                actor=ci.account,
                environment=envs["test"],
                model_version=version,
                change_request=change,
                clock=clock,
                pipeline_url=f"https://ci.example.com/p/{version.version}",
            )
        )
        clock.advance(hours=1)
    return deployments


def answer(client, q, status=200):
    response = client.get(API, {"q": q})
    assert response.status_code == status, response.content
    return response.json()


def test_a_commit_prefix_of_seven_finds_the_build_where_it_is_live(released, ci, peer, requester):
    live = released[1]
    sha = live.model_version.commit_sha
    for q in (sha, sha[:7], sha[:7].upper()):
        found = answer(ci.client(), q)
        (build,) = found["commits"]
        assert build["commit_sha"] == sha and build["version"] == "2.0"
        (where,) = build["live"]
        assert where["environment"] == "test"
        assert where["change_request"] == live.change_request.number
        assert where["requester"]["username"] == requester.username
        assert where["deployer"]["kind"] == "pipeline"
        assert where["deployer"]["pipeline_url"] == "https://ci.example.com/p/2.0"
        assert [s["username"] for s in where["signers"]] == [peer.username]
        assert [d["id"] for d in build["deployments"]] == [live.pk]
        assert [c["number"] for c in build["change_requests"]] == [live.change_request.number]


def test_six_hex_characters_are_too_short_for_a_commit(released, ci):
    sha = released[1].model_version.commit_sha
    found = answer(ci.client(), sha[:6])
    assert found["commits"] == [] and found["artifacts"] == []
    assert "7" in found["notes"][0] and "6 hex characters" in found["notes"][0]


def test_a_build_no_longer_live_answers_with_its_history(released, ci):
    replaced = released[0]
    (build,) = answer(ci.client(), replaced.model_version.commit_sha[:12])["commits"]
    assert build["live"] == []
    assert build["deployments"][0]["id"] == replaced.pk


def test_an_artifact_digest_or_its_prefix(released, ci):
    sha = released[1].model_version.artifact_sha256
    for q in (sha, sha[:9]):
        (build,) = answer(ci.client(), q)["artifacts"]
        assert build["artifact_sha256"] == sha
        assert build["live"][0]["environment"] == "test"


def test_a_change_request_by_its_number_with_or_without_cr(released, ci):
    change = released[0].change_request
    for q in (change.number, change.number.lower(), str(change.pk)):
        (hit,) = answer(ci.client(), q)["change_requests"]
        assert hit["number"] == change.number and hit["state"] == "deployed"
        assert hit["build"]["version"] == "1.0"
        # Its build was replaced by 2.0: live nowhere, and its history says so.
        assert hit["build"]["live"] == []


def test_a_model_name_lists_where_it_is_live_and_its_history(released, ci):
    found = answer(ci.client(), "fraud-score")
    (model,) = found["models"]
    assert model["name"] == "fraud-score"
    assert [(w["environment"], w["version"]) for w in model["live"]] == [("test", "2.0")]
    assert [d["version"] for d in model["deployments"]] == ["2.0", "1.0"]


def test_a_dataset_lists_the_builds_trained_on_it_and_where_they_run(released, ci):
    (dataset,) = answer(ci.client(), "transactions")["datasets"]
    assert dataset["version"] == "2024-10"
    (build,) = dataset["builds"]
    assert build["version"] == "2.0" and build["live"][0]["environment"] == "test"


def test_a_person_by_username_or_name(released, ci, requester, peer):
    for q in (requester.username, requester.get_full_name(), requester.last_name.upper()):
        people = answer(ci.client(), q)["people"]
        assert [p["username"] for p in people] == [requester.username]
        filed = [c["number"] for c in people[0]["change_requests"]]
        assert filed == [d.change_request.number for d in reversed(released)]
    (signer,) = answer(ci.client(), peer.username)["people"]
    assert len(signer["sign_offs"]) == 2 and signer["sign_offs"][0]["decision"] == "approve"


def test_no_match_says_so_without_error(released, ci, login, auditor):
    found = answer(ci.client(), "no-such-thing-anywhere")
    kinds = ("change_requests", "models", "commits", "artifacts", "datasets", "people")
    assert all(found[kind] == [] for kind in kinds)
    page = login(auditor).get(reverse("releases:search"), {"q": "no-such-thing-anywhere"})
    assert page.status_code == 200
    assert "Nothing matches 'no-such-thing-anywhere'" in page.content.decode()


@pytest.mark.parametrize(
    ("q", "code"), [("", "query_missing"), ("   ", "query_missing"), ("x", "query_too_short")]
)
def test_a_query_that_names_nothing_is_refused_with_a_reason(ci, q, code, login, auditor):
    refused = answer(ci.client(), q, status=400)
    assert refused["code"] == code and refused["detail"]
    page = login(auditor).get(reverse("releases:search"), {"q": "x"})
    assert page.status_code == 400 and "too short" in page.content.decode()


def test_many_matches_are_cut_with_a_note(org, ci):
    for n in range(12):
        build_register(f"churn-{n:02}", "1")
    found = answer(ci.client(), "churn")
    assert len(found["models"]) == 10 and found["truncated"] == ["models"]
    assert any("type more" in note for note in found["notes"])


def test_tokens_need_gate_or_audit_read(released, service_caller):
    sha = released[1].model_version.commit_sha[:8]
    for scope in ("gate:read", "audit:read"):
        assert answer(service_caller(scope).client(), sha)["commits"]
    for scope in ("registry:write", "deployments:write", "metrics:read"):
        refused = answer(service_caller(scope).client(), sha, status=403)
        assert "gate:read" in refused["detail"]


def test_the_page_shows_where_a_commit_prefix_is_live(released, login, auditor):
    live = released[1]
    html = login(auditor).get(reverse("releases:search"), {"q": live.model_version.commit_sha[:7]})
    text = html.content.decode()
    assert "Builds of commit" in text
    where = text[text.index("Live in") :]
    assert live.change_request.number in where and "https://ci.example.com/p/2.0" in where


@pytest.mark.parametrize("kind", ["commit", "artifact", "change", "model", "dataset", "person"])
def test_the_queries_do_not_grow_with_the_history(
    released, ci, clock, envs, kind, requester, django_assert_max_num_queries
):
    live = released[1]
    q = {
        "commit": live.model_version.commit_sha[:7],
        "artifact": live.model_version.artifact_sha256[:7],
        "change": live.change_request.number,
        "model": "fraud-score",
        "dataset": "transactions",
        "person": requester.username,
    }[kind]
    client = ci.client()
    with CaptureQueriesContext(connection) as small:
        answer(client, q)
    # Ten times the history: more builds, deployments back and forth, more changes.
    for n in range(10):
        version = build_register(
            "fraud-score", f"3.{n}", datasets=[{"name": "transactions", "version": "2024-10"}]
        )
        file_change(
            model_version=version,
            environment=envs["test"],
            requester=requester,
            signers=[],
            window_start=clock.now,
        )
        deploy(actor=ci.account, environment=envs["dev"], model_version=version, clock=clock)
        deploy(
            actor=ci.account, environment=envs["dev"], model_version=live.model_version, clock=clock
        )
    with django_assert_max_num_queries(len(small)):
        answer(client, q)
