"""Issue 19: the auditor finds a change by what they know of it (`CR-22`, a model's name, a
deployment id or a commit SHA) in one "about" field, with its build's and deployments' events."""

from datetime import timedelta

import pytest
from django.urls import reverse

from audit.selectors import EventFilters, audit_event_page, describe_about
from releases.builders import release_to_test

pytestmark = pytest.mark.django_db

ROLLBACK = "/api/v1/environments/test/models/fraud-score/rollback/"


@pytest.fixture
def history(envs, builds, ci, clock, requester, peer, django_clock):
    """1.0 then 1.1 released to test through their changes, then 1.1 rolled back."""
    first = release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(hours=1)
    )
    second = release_to_test(
        envs, builds["1.1"], ci.account, clock, requester, peer, pause=timedelta(hours=1)
    )
    rollback = ci.client().post(ROLLBACK, {"reason": "Scores drifted."}, format="json")
    assert rollback.status_code == 201
    return {"first": first, "second": second, "rollback_id": rollback.json()["id"]}


def subjects(auditor, **filters) -> set[tuple[str, str]]:
    page = audit_event_page(user=auditor, filters=EventFilters(**filters), limit=500)
    return {(event.object_type, event.object_id) for event in page.events}


def test_a_change_number_finds_the_change_its_build_and_its_deployments(auditor, history):
    second = history["second"]

    found = subjects(auditor, about=second.change_request.number)

    assert ("releases.changerequest", str(second.change_request.pk)) in found
    assert ("registry.modelversion", str(second.model_version_id)) in found
    assert ("releases.deployment", str(second.pk)) in found
    assert ("releases.deployment", str(history["rollback_id"])) in found
    first = history["first"]
    assert ("releases.changerequest", str(first.change_request.pk)) not in found
    assert ("releases.deployment", str(first.pk)) not in found
    assert subjects(auditor, about=second.change_request.number.lower()) == found


def test_a_commit_prefix_a_deployment_and_a_model_name(auditor, history):
    first = history["first"]
    sha = first.model_version.commit_sha

    by_commit = subjects(auditor, about=sha[:7])
    by_deployment = subjects(auditor, about=f"D-{first.pk}")
    by_model = subjects(auditor, about="fraud-score")

    assert ("registry.modelversion", str(first.model_version_id)) in by_commit
    assert ("releases.changerequest", str(first.change_request_id)) in by_commit
    assert ("registry.modelversion", str(history["second"].model_version_id)) not in by_commit
    assert (
        by_deployment
        == {
            ("releases.deployment", str(first.pk)),
            ("registry.modelversion", str(first.model_version_id)),
            ("releases.changerequest", str(first.change_request_id)),
        }
        & by_deployment
    )
    assert ("releases.deployment", str(first.pk)) in by_deployment
    assert by_commit | {("releases.deployment", str(history["second"].pk))} <= by_model


def test_the_model_filter_narrows_any_other_filter(auditor, history, fraud):
    everything_of_fraud = subjects(auditor, model="fraud-score")
    of_one_change = subjects(
        auditor, about=history["first"].change_request.number, model="fraud-score"
    )

    assert of_one_change and of_one_change <= everything_of_fraud
    assert subjects(auditor, about=history["first"].change_request.number, model="nope") == set()


@pytest.mark.parametrize("text", ["CR-999999", "D-999999", "no-such-model", "abcdef0123", "22"])
def test_unknown_things_find_nothing_rather_than_everything(auditor, history, text):
    assert subjects(auditor, about=text) == set()
    assert describe_about(text)


def test_the_page_says_what_it_understood_and_shows_each_events_object(login, auditor, history):
    number = history["second"].change_request.number

    response = login(auditor).get(reverse("audit:events"), {"about": number})
    unknown = login(auditor).get(reverse("audit:events"), {"about": "CR 22 please"})

    body = response.content.decode()
    assert f"About: {number}, its build and 2 deployments" in body
    assert "releases.deployment" in body and "registry.modelversion" in body
    assert "Nothing called “CR 22 please” is known" in unknown.content.decode()
    assert "No events match." in unknown.content.decode()


def test_the_api_takes_about_and_finds_nothing_for_what_it_does_not_know(auditor, history, ci):
    number = history["first"].change_request.number
    client = ci.client()

    answer = client.get("/api/v1/audit/events/", {"about": number, "limit": 500})
    unknown = client.get("/api/v1/audit/events/", {"about": "CR-999999"})

    assert answer.status_code == 200
    types = {event["object_type"] for event in answer.json()["results"]}
    assert types == {"releases.changerequest", "registry.modelversion", "releases.deployment"}
    assert unknown.status_code == 200 and unknown.json()["results"] == []


def test_only_audit_readers_use_the_filter(login, requester, history):
    assert (
        login(requester).get(reverse("audit:events"), {"about": "fraud-score"}).status_code == 403
    )
