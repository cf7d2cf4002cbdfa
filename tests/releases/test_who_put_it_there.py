"""Who put it there: the environment page's live row, the deployment page and the live API name
the requester of the change, the deployer (a person, or a pipeline with its run's link) and the
signers with their team and time, now and as of a past moment, in a number of queries that does
not grow with the live models."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.builders import build_register
from releases.builders import deploy, file_change

pytestmark = pytest.mark.django_db

PIPELINE = "https://ci.example.com/fraud/pipelines/"


def release(*, n, envs, version, ci, clock, requester, peer):
    change = file_change(
        model_version=version,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    return deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=version,
        change_request=change,
        clock=clock,
        pipeline_url=f"{PIPELINE}{n}",
    )


@pytest.fixture
def two_releases(envs, builds, ci, clock, requester, peer, django_clock):
    first = release(
        n=1, envs=envs, version=builds["1.0"], ci=ci, clock=clock, requester=requester, peer=peer
    )
    clock.advance(days=1)
    second = release(
        n=2, envs=envs, version=builds["1.1"], ci=ci, clock=clock, requester=peer, peer=requester
    )
    return first, second


def test_the_environment_page_names_requester_pipeline_and_signers(
    two_releases, login, auditor, requester, peer
):
    _, second = two_releases
    page = login(auditor).get(reverse("releases:environment", args=["test"])).content.decode()
    assert second.change_request.number in page
    # The second change was asked for by the peer and signed by the requester.
    row = page[page.index("fraud-score") :]
    row = row[: row.index("</tr>")]
    assert f"({peer.username})" in row
    assert "pipeline</span> ci-pipeline" in row
    assert f'href="{PIPELINE}2"' in row
    assert f'{requester.get_full_name()} <span class="muted">(Data Science,' in row


def test_the_environment_page_as_of_a_past_moment_names_the_first_release(
    two_releases, login, auditor, requester
):
    first, second = two_releases
    at = (second.succeeded_at - timedelta(minutes=1)).isoformat()
    page = login(auditor).get(reverse("releases:environment", args=["test"]), {"at": at})
    html = page.content.decode()
    row = html[html.index("fraud-score") :]
    row = row[: row.index("</tr>")]
    assert first.change_request.number in row
    assert f"({requester.username})" in row
    assert f'href="{PIPELINE}1"' in row
    assert f'href="{PIPELINE}2"' not in row


def test_the_deployment_page_names_requester_deployer_and_signers(
    two_releases, login, auditor, requester, peer
):
    _, second = two_releases
    html = login(auditor).get(reverse("releases:deployment", args=[second.pk])).content.decode()
    requested = html[html.index("Requested by") :]
    assert f"({peer.username})" in requested[: requested.index("</dd>")]
    deployed = html[html.index("Deployed by") :]
    deployed = deployed[: deployed.index("</dd>")]
    assert "ci-pipeline" in deployed and f'href="{PIPELINE}2"' in deployed
    signed = html[html.index("Signed by") :]
    assert requester.get_full_name() in signed[: signed.index("</dd>")]


def test_the_live_api_answers_who_put_it_there_now_and_then(two_releases, ci, peer, requester):
    first, second = two_releases
    client = ci.client()
    now = client.get("/api/v1/environments/test/live/").json()["models"][0]
    assert now["requester"] == {"username": peer.username, "name": peer.get_full_name()}
    assert now["deployer"] == {
        "kind": "pipeline",
        "name": "ci-pipeline",
        "pipeline_url": f"{PIPELINE}2",
    }
    assert [(s["username"], s["team"]) for s in now["signers"]] == [
        (requester.username, "data-science")
    ]
    at = (second.succeeded_at - timedelta(minutes=1)).isoformat()
    then = client.get("/api/v1/environments/test/live/", {"at": at}).json()["models"][0]
    assert then["change_request"] == first.change_request.number
    assert then["requester"]["username"] == requester.username
    assert then["deployer"]["pipeline_url"] == f"{PIPELINE}1"
    assert [s["username"] for s in then["signers"]] == [peer.username]


def test_a_person_deploying_where_no_change_is_needed_is_named_as_a_person(
    envs, builds, requester, clock, login, auditor
):
    deploy(actor=requester, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    row = login(auditor).get("/api/v1/environments/dev/live/").json()["models"][0]
    assert row["deployer"] == {"kind": "person", "name": requester.username, "pipeline_url": ""}
    assert row["requester"] is None and row["signers"] == []


def test_who_put_it_there_costs_the_same_queries_for_one_or_many_models(
    envs, ci, clock, requester, peer, login, auditor, django_assert_max_num_queries
):
    def grow(names):
        for name in names:
            release(
                n=name,
                envs=envs,
                version=build_register(name, "1"),
                ci=ci,
                clock=clock,
                requester=requester,
                peer=peer,
            )

    client = login(auditor)
    grow(["m-0"])
    with CaptureQueriesContext(connection) as one:
        assert client.get("/api/v1/environments/test/live/").status_code == 200
    with CaptureQueriesContext(connection) as one_page:
        assert client.get(reverse("releases:environment", args=["test"])).status_code == 200
    grow([f"m-{n}" for n in range(1, 6)])
    with django_assert_max_num_queries(len(one)):
        models = client.get("/api/v1/environments/test/live/").json()["models"]
    assert len(models) == 6 and all(m["requester"] for m in models)
    with django_assert_max_num_queries(len(one_page)):
        assert client.get(reverse("releases:environment", args=["test"])).status_code == 200
