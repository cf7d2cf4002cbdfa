"""The read API for reports (issue 17): change requests, sign-offs, deployments, environments
and notifications, each behind the `read` scope for tokens, with checked filters, a stable
cursor and a number of queries that does not grow with the page."""

import base64
import itertools
from datetime import timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from portal.models import Scope
from portal.notifications import notifications_mark_read, notify
from registry.builders import build_register
from releases.builders import deploy, file_change, sign
from releases.models import Deployment
from releases.services import change_requests as services
from releases.services import policy
from releases.services.deployments import deployment_rollback
from tests.conftest import make_service_caller

pytestmark = pytest.mark.django_db

CHANGES = "/api/v1/change-requests/"
DEPLOYMENTS = "/api/v1/deployments/"
ENVIRONMENTS = "/api/v1/environments/"
NOTIFICATIONS = "/api/v1/notifications/"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def results(response) -> list:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def refused(response, *, code: str = "invalid_filter", field: str | None = None) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in body["fields"], body
    return body


def queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured.captured_queries)


@pytest.fixture
def reader(service_caller):
    """A reporting job's token: `read` only, of Data Science."""
    return service_caller(Scope.READ).client()


@pytest.fixture
def filed(new_change):
    """Change requests filed for prod by the requester, oldest first."""

    def file(count: int) -> list:
        return [new_change() for _ in range(count)]

    return file


# The scope


def read_urls(change) -> list[str]:
    deployment = Deployment.objects.order_by("pk").first()
    return [
        CHANGES,
        f"{CHANGES}{change.number}/sign-offs/",
        DEPLOYMENTS,
        f"{DEPLOYMENTS}{deployment.pk}/",
        ENVIRONMENTS,
        f"{ENVIRONMENTS}prod/",
        NOTIFICATIONS,
    ]


@pytest.fixture
def a_bit_of_everything(envs, version, ci, clock, filed_change, peer):
    sign(peer, filed_change)
    deploy(actor=ci.account, environment=envs["dev"], model_version=version, clock=clock)
    return filed_change


def test_a_token_without_read_is_refused_every_read(a_bit_of_everything, service_caller):
    others = [scope for scope in Scope.values if scope != Scope.READ]
    without = service_caller(*others).client()
    for url in read_urls(a_bit_of_everything):
        response = without.get(url)
        assert response.status_code == 403, url
        assert "'read'" in response.json()["detail"]


def test_a_read_token_people_and_nobody_else(a_bit_of_everything, reader, auditor):
    for url in read_urls(a_bit_of_everything):
        assert reader.get(url).status_code == 200, url
        assert person(auditor).get(url).status_code == 200, url
        assert APIClient().get(url).status_code == 401, url


def test_read_writes_nothing(a_bit_of_everything, service_caller, envs, version):
    """`read` is no write scope: a reporting token neither deploys nor registers."""
    client = service_caller(Scope.READ).client()
    start = {"environment": "dev", "model": "fraud-detector", "version": "1.0.0"}
    assert client.post(DEPLOYMENTS, start, format="json").status_code == 403
    assert client.post("/api/v1/gate/", start, format="json").status_code == 403
    assert client.get("/api/v1/audit/events/").status_code == 403


# Change requests


def test_change_requests_filter_by_model_team_and_requester(
    envs, version, fraud, requester, peer, model_risk_approver, reader
):
    other_build = build_register(fraud.name, "1.0")
    by_requester = file_change(
        requester=requester,
        model_version=version,
        environment=envs["prod"],
        signers=[peer, model_risk_approver],
    )
    by_peer = file_change(requester=peer, model_version=other_build, environment=envs["test"])

    def numbers(**params) -> list[str]:
        return [item["number"] for item in results(reader.get(CHANGES, params))]

    assert numbers() == [by_peer.number, by_requester.number]
    assert numbers(model="fraud-detector") == [by_requester.number]
    assert numbers(model="fraud-score") == [by_peer.number]
    assert numbers(requester="peer") == [by_peer.number]
    assert numbers(requester="requester", environment="prod") == [by_requester.number]
    # A team is the one that filed the change or one that signed it.
    assert numbers(team="model-risk") == [by_requester.number]
    assert numbers(team="data-science") == [by_peer.number, by_requester.number]
    assert numbers(team="release-management") == []
    assert numbers(model="no-such-model") == []


def test_change_requests_updated_since_sees_sign_offs_and_withdrawals(
    django_clock, filed, peer, model_risk_approver, reader
):
    untouched, signed, withdrawn = filed(3)
    sign(peer, withdrawn)
    approval = sign(model_risk_approver, withdrawn)
    django_clock.advance(hours=1)
    since = django_clock.now
    sign(peer, signed)
    # The change stays in approval: only its record says that something happened.
    services.sign_off_withdraw(
        actor=model_risk_approver, sign_off=approval, reason="Wrong validation report."
    )
    listed = results(reader.get(CHANGES, {"updated_since": since.isoformat()}))
    assert [item["number"] for item in listed] == [withdrawn.number, signed.number]
    later = (since + timedelta(seconds=1)).isoformat()
    assert results(reader.get(CHANGES, {"updated_since": later})) == []
    assert untouched.number in [item["number"] for item in results(reader.get(CHANGES))]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "no spaces please"}, "model"),
        ({"team": "model risk"}, "team"),
        ({"requester": "who?"}, "requester"),
        ({"updated_since": "2026-02-30T10:00:00+01:00"}, "updated_since"),
        ({"updated_since": "2026-02-03T10:00:00"}, "updated_since"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": ""}, "updated_since"),
        ({"state": "sideways"}, "state"),
        ({"kind": "sometimes"}, "kind"),
        ({"environment": "pr/od"}, "environment"),
        ({"updatedsince": "2026-02-03T10:00:00+01:00"}, "updatedsince"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
    ],
)
def test_change_requests_refuse_a_bad_filter(filed, reader, params, field):
    filed(1)
    body = refused(reader.get(CHANGES, params), field=field)
    assert field in body["detail"]


def test_a_filter_given_twice_is_refused(filed, reader):
    filed(1)
    refused(reader.get(f"{CHANGES}?state=draft&state=in_review"), field="state")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"p=99999999999999999999999").decode(),
        base64.b64encode(b"o=-1").decode(),
        base64.b64encode(b"p=1\x00").decode(),
    ],
)
def test_a_cursor_that_is_not_ours_is_400_not_404(filed, reader, cursor):
    filed(1)
    refused(reader.get(CHANGES, {"cursor": cursor}), code="invalid_cursor", field="cursor")


def test_change_request_paging_is_stable_across_inserts(filed, reader):
    first_five = filed(5)
    page = reader.get(CHANGES, {"page_size": 2}).json()
    seen = [item["number"] for item in page["results"]]
    filed(3)  # filed while the report pages through: they are newer, so not on its pages
    while page["next"]:
        page = reader.get(page["next"]).json()
        seen += [item["number"] for item in page["results"]]
    assert seen == [change.number for change in reversed(first_five)]


def test_the_change_request_list_costs_the_same_queries_at_2_and_20(
    filed, peer, model_risk_approver, reader
):
    def with_sign_offs(count: int) -> None:
        for change in filed(count):
            sign(peer, change)
            sign(model_risk_approver, change)

    with_sign_offs(2)
    small = queries(reader, CHANGES, {"team": "model-risk"})
    with_sign_offs(18)
    assert len(results(reader.get(CHANGES, {"team": "model-risk"}))) == 20
    assert queries(reader, CHANGES, {"team": "model-risk"}) == small


# Sign-offs


def test_sign_offs_keep_voided_and_withdrawn_ones_with_their_reason(
    filed_change, requester, peer, model_risk_approver, reader
):
    review = sign(peer, filed_change)
    approval = sign(model_risk_approver, filed_change)
    services.sign_off_withdraw(
        actor=model_risk_approver, sign_off=approval, reason="Wrong validation report."
    )
    services.change_request_edit(
        actor=requester, change_request=filed_change, justification="Better recall, retested."
    )
    url = f"{CHANGES}{filed_change.number}/sign-offs/"
    listed = results(reader.get(url))
    assert [item["id"] for item in listed] == [review.pk, approval.pk]
    peer_review, withdrawn = listed
    assert peer_review["kind"] == "peer_review" and peer_review["team"] == "data-science"
    assert peer_review["signer"] == "peer" and peer_review["decision"] == "approve"
    assert peer_review["meaning"].startswith(f"I approve {filed_change.number}")
    assert peer_review["signed_at"] and peer_review["voided_at"]
    assert "edited" in peer_review["voided_reason"] and peer_review["withdrawn_by"] is None
    assert withdrawn["team"] == "model-risk" and withdrawn["withdrawn_by"] == "risk"
    assert withdrawn["voided_reason"] == "Wrong validation report."

    services.change_request_submit(actor=requester, change_request=filed_change)
    again = sign(peer, filed_change)
    assert [item["id"] for item in results(reader.get(url, {"voided": "false"}))] == [again.pk]
    assert len(results(reader.get(url, {"voided": "true"}))) == 2
    assert [item["id"] for item in results(reader.get(url, {"kind": "approval"}))] == [approval.pk]
    refused(reader.get(url, {"voided": "perhaps"}), field="voided")
    refused(reader.get(url, {"kind": "blessing"}), field="kind")
    missing = reader.get(f"{CHANGES}CR-999999/sign-offs/")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_change_request"


def test_sign_offs_page_by_cursor_in_the_order_given_at_a_flat_cost(
    filed_change, requester, peer, reader
):
    url = f"{CHANGES}{filed_change.number}/sign-offs/"

    edits = itertools.count()

    def review_and_edit(times: int) -> None:
        for _ in range(times):
            sign(peer, filed_change)
            services.change_request_edit(
                actor=requester,
                change_request=filed_change,
                justification=f"Retested ({next(edits)}).",
            )
            services.change_request_submit(actor=requester, change_request=filed_change)

    review_and_edit(2)
    small = queries(reader, url)
    review_and_edit(18)
    assert queries(reader, url) == small
    page = reader.get(url, {"page_size": 15}).json()
    ids = [item["id"] for item in page["results"]]
    ids += [item["id"] for item in results(reader.get(page["next"]))]
    assert len(ids) == 20 and ids == sorted(ids)


# Deployments


@pytest.fixture
def history(envs, builds, fraud, ci, clock):
    """In dev: 1.0 succeeded, 1.1 failed, then 1.2 succeeded and was rolled back to 1.0."""
    first = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    clock.advance(hours=1)
    failed = deploy(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.1"],
        clock=clock,
        succeed=False,
    )
    clock.advance(hours=1)
    later = clock.now
    third = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.2"], clock=clock
    )
    rollback = deployment_rollback(
        actor=ci.account, environment="dev", model=fraud.name, reason="Drift.", now=clock.now
    )
    return {"first": first, "failed": failed, "third": third, "rollback": rollback, "later": later}


def test_deployments_list_and_filters(history, reader, version, envs, ci, clock):
    other = deploy(actor=ci.account, environment=envs["dev"], model_version=version, clock=clock)

    def ids(**params) -> list[int]:
        return [item["id"] for item in results(reader.get(DEPLOYMENTS, params))]

    everything = [
        other.pk,
        history["rollback"].pk,
        history["third"].pk,
        history["failed"].pk,
        history["first"].pk,
    ]
    assert ids() == everything
    assert ids(model="fraud-detector") == [other.pk]
    assert ids(environment="prod") == []
    assert ids(status="failed") == [history["failed"].pk]
    assert ids(status="rolled_back") == [history["third"].pk]
    assert ids(kind="rollback") == [history["rollback"].pk]
    since = history["later"].isoformat()
    assert ids(started_since=since, model="fraud-score") == [
        history["rollback"].pk,
        history["third"].pk,
    ]
    rollback = results(reader.get(DEPLOYMENTS, {"kind": "rollback"}))[0]
    assert rollback["rollback_of"] == history["third"].pk and rollback["reason"] == "Drift."
    assert rollback["version"] == "1.0" and rollback["environment"] == "dev"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"kind": "redeploy"}, "kind"),
        ({"environment": "d e v"}, "environment"),
        ({"model": "fraud score"}, "model"),
        ({"started_since": "2026-13-01T00:00:00Z"}, "started_since"),
        ({"started_since": "2026-01-01"}, "started_since"),
        ({"started": "2026-01-01T00:00:00Z"}, "started"),
    ],
)
def test_deployments_refuse_a_bad_filter(history, reader, params, field):
    refused(reader.get(DEPLOYMENTS, params), field=field)


def test_a_deployment_by_id(history, reader):
    failed = history["failed"]
    body = reader.get(f"{DEPLOYMENTS}{failed.pk}/").json()
    assert body["id"] == failed.pk and body["status"] == "failed"
    assert body["started_by"] == "ci-pipeline" and body["model"] == "fraud-score"
    missing = reader.get(f"{DEPLOYMENTS}999999/")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_deployment"


def test_deployment_paging_is_stable_and_flat(envs, version, ci, clock, reader):
    def deployments(count: int) -> list:
        made = []
        for _ in range(count):
            made.append(
                deploy(
                    actor=ci.account, environment=envs["dev"], model_version=version, clock=clock
                )
            )
            clock.advance(minutes=5)
        return made

    made = deployments(2)
    small = queries(reader, DEPLOYMENTS)
    made += deployments(18)
    assert queries(reader, DEPLOYMENTS) == small
    page = reader.get(DEPLOYMENTS, {"page_size": 7}).json()
    seen = [item["id"] for item in page["results"]]
    deployments(2)
    while page["next"]:
        page = reader.get(page["next"]).json()
        seen += [item["id"] for item in page["results"]]
    assert seen == [deployment.pk for deployment in reversed(made)]


# Environments


def test_environments_with_their_policy_freezes_and_what_is_live(
    envs, version, ci, clock, reader, administrator
):
    deploy(actor=ci.account, environment=envs["dev"], model_version=version, clock=clock)
    soon = clock.now + timedelta(days=20)
    year_end = policy.freeze_window_create(
        actor=administrator,
        environment=envs["prod"],
        starts_at=soon,
        ends_at=soon + timedelta(days=10),
        reason="Year-end freeze",
    )
    lifted = policy.freeze_window_create(
        actor=administrator,
        environment=envs["prod"],
        starts_at=soon,
        ends_at=soon + timedelta(days=1),
        reason="Audit week",
    )
    policy.freeze_window_cancel(actor=administrator, freeze_window=lifted, reason="Moved.")
    policy.freeze_window_create(
        actor=administrator,
        environment=envs["prod"],
        starts_at=clock.now - timedelta(days=10),
        ends_at=clock.now - timedelta(days=9),
        reason="Over",
    )
    listed = results(reader.get(ENVIRONMENTS))
    assert [item["name"] for item in listed] == ["dev", "test", "prod"]
    dev, test, prod = listed
    assert dev["policy"]["needs_change_request"] is False
    assert [(row["model"], row["version"]) for row in dev["live"]] == [("fraud-detector", "1.0.0")]
    assert dev["live"][0]["deployed_by"] == "ci-pipeline" and prod["live"] == []
    assert test["policy"]["needs_peer_review"] is True and test["policy"]["approval_teams"] == []
    rules = prod["policy"]
    assert rules["version"] == 1 and rules["needs_peer_review"] is True
    assert rules["approval_teams"] == ["model-risk", "platform-operations", "release-management"]
    assert (rules["soak_source"], rules["soak_days"]) == ("test", 7)
    assert [(f["id"], f["in_effect"]) for f in prod["freezes"]] == [(year_end.pk, False)]
    assert reader.get(f"{ENVIRONMENTS}prod/").json() == prod


def test_the_policy_shown_is_the_one_in_force(envs, reader, administrator, org):
    policy.environment_policy_change(
        actor=administrator,
        environment=envs["test"],
        approval_teams=[org["model-risk"]],
    )
    body = reader.get(f"{ENVIRONMENTS}test/").json()
    assert body["policy"]["version"] == 2
    assert body["policy"]["approval_teams"] == ["model-risk"]


def test_environment_filter_and_refusals(envs, reader):
    every = ["dev", "test", "prod"]
    assert [
        item["name"] for item in results(reader.get(ENVIRONMENTS, {"production": "0"}))
    ] == every
    assert results(reader.get(ENVIRONMENTS, {"production": "true"})) == []
    refused(reader.get(ENVIRONMENTS, {"production": "sometimes"}), field="production")
    refused(reader.get(ENVIRONMENTS, {"name": "prod"}), field="name")
    missing = reader.get(f"{ENVIRONMENTS}staging/")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_environment"


def test_environments_cost_the_same_queries_at_3_and_20(envs, version, ci, clock, reader):
    def more_environments(count: int, first_rank: int) -> None:
        for rank in range(first_rank, first_rank + count):
            environment = policy.environment_create(actor=None, name=f"lab-{rank}", rank=rank)
            policy.environment_policy_change(
                actor=None, environment=environment, needs_change_request=False, approval_teams=[]
            )
            start = clock.now + timedelta(days=30)
            policy.freeze_window_create(
                actor=None,
                environment=environment,
                starts_at=start,
                ends_at=start + timedelta(days=1),
                reason="Lab maintenance",
            )
            deploy(actor=ci.account, environment=environment, model_version=version, clock=clock)

    deploy(actor=ci.account, environment=envs["dev"], model_version=version, clock=clock)
    small = queries(reader, ENVIRONMENTS)
    more_environments(17, first_rank=10)
    listed = results(reader.get(ENVIRONMENTS))
    assert len(listed) == 20 and all(item["live"] for item in listed[3:])
    assert queries(reader, ENVIRONMENTS) == small


# Notifications


def told(user, key: str, subject: str = "Something happened") -> None:
    notify(recipients=[user], key=key, subject=subject, body="…", reason="A test.")


@pytest.fixture
def notified(requester, peer, model_risk_approver, release_approver):
    told(requester, "a", "For the requester")
    told(peer, "b", "For the peer")
    told(model_risk_approver, "c", "For Model Risk")
    told(release_approver, "d", "For Release Management")


def subjects(response) -> list[str]:
    return [item["subject"] for item in results(response)]


def test_a_person_reads_their_own_notifications_only(notified, requester, peer):
    assert subjects(person(requester).get(NOTIFICATIONS)) == ["For the requester"]
    assert subjects(person(requester).get(NOTIFICATIONS, {"recipient": "peer"})) == []


def test_a_token_reads_its_teams_notifications_not_another_teams(notified, org, reader):
    assert subjects(reader.get(NOTIFICATIONS)) == ["For the peer", "For the requester"]
    risk_reader = make_service_caller(org["model-risk"], "risk-reports", [Scope.READ]).client()
    assert subjects(risk_reader.get(NOTIFICATIONS)) == ["For Model Risk"]
    wrong = risk_reader.get(NOTIFICATIONS, {"team": "data-science"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "token_wrong_team"
    assert risk_reader.get(NOTIFICATIONS, {"team": "no-such-team"}).status_code == 403


def test_a_granted_team_is_read_too_and_team_narrows(notified, org):
    shared = make_service_caller(
        org["platform-operations"],
        "shared-reports",
        [Scope.READ],
        granted_teams=(org["model-risk"],),
    ).client()
    assert subjects(shared.get(NOTIFICATIONS)) == ["For Model Risk"]
    assert subjects(shared.get(NOTIFICATIONS, {"team": "model-risk"})) == ["For Model Risk"]
    assert subjects(shared.get(NOTIFICATIONS, {"team": "platform-operations"})) == []


def test_notification_filters(notified, requester, reader, django_clock):
    django_clock.advance(hours=2)
    since = django_clock.now
    told(requester, "e", "Later")
    notifications_mark_read(actor=requester)
    assert subjects(reader.get(NOTIFICATIONS, {"since": since.isoformat()})) == ["Later"]
    # ISO-8601 allows offsets up to 23:59, PostgreSQL only to 15:59: the moment is read in UTC.
    far_east = since.astimezone(timezone(timedelta(hours=23, minutes=59))).isoformat()
    assert subjects(reader.get(NOTIFICATIONS, {"since": far_east})) == ["Later"]
    assert subjects(reader.get(NOTIFICATIONS, {"unread": "true"})) == ["For the peer"]
    assert subjects(reader.get(NOTIFICATIONS, {"recipient": "requester"})) == [
        "Later",
        "For the requester",
    ]
    refused(reader.get(NOTIFICATIONS, {"unread": "maybe"}), field="unread")
    refused(reader.get(NOTIFICATIONS, {"since": "2026-02-30T00:00:00Z"}), field="since")
    refused(reader.get(NOTIFICATIONS, {"recipient": "a b"}), field="recipient")
    refused(reader.get(NOTIFICATIONS, {"cursor": "nope"}), code="invalid_cursor")


def test_notifications_page_stably_at_a_flat_cost(requester, reader):
    for number in range(2):
        told(requester, f"first-{number}")
    small = queries(reader, NOTIFICATIONS)
    for number in range(18):
        told(requester, f"more-{number}")
    assert queries(reader, NOTIFICATIONS) == small
    page = reader.get(NOTIFICATIONS, {"page_size": 8}).json()
    seen = [item["id"] for item in page["results"]]
    told(requester, "while-paging")
    while page["next"]:
        page = reader.get(page["next"]).json()
        seen += [item["id"] for item in page["results"]]
    assert len(seen) == 20 and seen == sorted(seen, reverse=True)


# The model list and the schema


def test_the_model_list_is_cursor_paged_and_checks_its_filters(org, reader):
    for name in ("alpha-model", "beta-model", "gamma-model"):
        build_register(name, "1.0")
    page = reader.get("/api/v1/models/", {"page_size": 2}).json()
    names = [item["name"] for item in page["results"]]
    names += [item["name"] for item in results(reader.get(page["next"]))]
    assert names == ["alpha-model", "beta-model", "gamma-model"]
    refused(reader.get("/api/v1/models/", {"risk_tier": "7"}), field="risk_tier")
    refused(reader.get("/api/v1/models/", {"owner_team": "data science"}), field="owner_team")
    refused(reader.get("/api/v1/models/", {"cursor": "x"}), code="invalid_cursor")


def test_the_schema_documents_every_read_with_an_example(reader):
    schema = reader.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    reads = {
        "/api/v1/change-requests/": "v1_change_requests_list",
        "/api/v1/change-requests/{number}/sign-offs/": "v1_change_request_sign_offs_list",
        "/api/v1/deployments/": "v1_deployments_list",
        "/api/v1/deployments/{id}/": "v1_deployment_retrieve",
        "/api/v1/environments/": "v1_environments_list",
        "/api/v1/environments/{environment}/": "v1_environment_retrieve",
        "/api/v1/notifications/": "v1_notifications_list",
        "/api/v1/models/": "v1_models_list",
    }
    for path, operation_id in reads.items():
        operation = schema["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        answer = operation["responses"]["200"]["content"]["application/json"]
        assert answer.get("examples"), path
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        if path.endswith("s/"):
            assert {"cursor", "page_size"} <= names, path
