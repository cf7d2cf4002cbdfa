"""Bad input gets a clear 4xx, never a 500 and never a silent drop (issue 14, hole 10): dates
that do not exist, JSON nested too deep, bodies over the limit, line breaks and control
characters in names and titles, look-alike letters in dataset names, unknown fields and NUL
characters in headers."""

import json
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from organisation import services as org_services
from portal.celery import app as celery_app
from portal.models import Notification, Scope
from portal.tasks import deliver_pending_notifications
from registry.models import DatasetVersion, ModelVersion, RegisteredModel
from releases.models import ChangeRequest
from tests.registry import helpers

pytestmark = pytest.mark.django_db

BAD_MOMENTS = [
    "2026-02-30T10:00",
    "2026-13-01T10:00",
    "2026-11-26T25:00",
    "2026-11-26T10:00+99:00",
    "0001-01-01T00:00+05:00",
    "not-a-date",
]


@pytest.fixture
def registrar(service_caller) -> APIClient:
    return service_caller(Scope.REGISTRY_WRITE).client()


def person(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# 1. `?at=` that names no real moment


@pytest.mark.parametrize("raw", BAD_MOMENTS)
def test_the_live_endpoint_refuses_a_moment_that_does_not_exist(ci, envs, raw):
    response = ci.client().get("/api/v1/environments/test/live/", {"at": raw})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_at"
    assert "2026-11-26T09:00" in body["detail"]


@pytest.mark.parametrize("raw", BAD_MOMENTS)
def test_the_environment_page_shows_why_a_moment_is_refused(login, auditor, envs, raw):
    response = login(auditor).get("/releases/environments/test/", {"at": raw})
    assert response.status_code == 400
    assert "is not a real date and time" in response.content.decode()
    assert "2026-11-26T09:00" in response.content.decode()


def test_a_real_moment_still_answers(ci, login, auditor, envs):
    answer = ci.client().get("/api/v1/environments/test/live/?at=2026-11-26T09:00:00Z")
    assert answer.status_code == 200
    page = login(auditor).get("/releases/environments/test/?at=2026-11-26T09:00")
    assert page.status_code == 200
    assert page.context["at"] == datetime(2026, 11, 26, 9, tzinfo=timezone.get_current_timezone())


# 2. JSON nested a thousand levels deep

DEEP = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"


def test_deep_json_to_a_registration_is_a_400(registrar, org):
    response = registrar.post("/api/v1/datasets/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "json_too_deep"


def test_json_deep_enough_to_pass_the_parser_is_refused_too(registrar, org):
    """Python's parser manages a few hundred levels; the audit trail's canonical JSON would not."""
    params = "[" * 400 + "]" * 400
    body = json.dumps(helpers.version_payload()).replace('{"max_depth": 6}', params)
    helpers.register_model()
    helpers.register_dataset()
    response = registrar.post(
        "/api/v1/models/credit-scoring/versions/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "json_too_deep"
    assert not ModelVersion.objects.exists()


def test_deep_json_to_a_deployment_is_a_400(ci, envs):
    response = ci.client().post("/api/v1/deployments/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "json_too_deep"


# 3. Bodies over the size limit


@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
def test_an_api_body_over_the_limit_is_a_json_413(settings, registrar, org, idempotency_key):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps(helpers.dataset_payload(uri="s3://data/" + "x" * 3000))
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    response = registrar.post("/api/v1/datasets/", body, content_type="application/json", **headers)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert not DatasetVersion.objects.exists()


def test_a_page_body_over_the_limit_is_a_400_not_a_500(settings, login, requester):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = login(requester).post("/releases/change-requests/new/", {"title": "x" * 3000})
    assert response.status_code == 400


# 4. Line breaks and control characters in names and titles

BROKEN_TITLES = ["Release\r\nBcc: everyone@bank.example", "Release\n1.0", "Bell\x07", "Esc\x1b[31m"]


@pytest.mark.parametrize("title", BROKEN_TITLES)
def test_the_api_refuses_a_title_with_a_line_break_or_control_character(
    requester, envs, version, title
):
    start = timezone.now() + timedelta(days=2)
    response = person(requester).post(
        "/api/v1/change-requests/",
        {
            "model": version.model.name,
            "version": version.version,
            "environment": "test",
            "title": title,
            "justification": "Better recall.",
            "rollback_plan": "Roll back.",
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=4)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert "title" in response.json()


@pytest.mark.parametrize("title", BROKEN_TITLES)
def test_the_form_refuses_a_title_with_a_line_break_or_control_character(
    login, requester, envs, version, title
):
    start = timezone.now() + timedelta(days=2)
    response = login(requester).post(
        "/releases/change-requests/new/",
        {
            "model_version": version.pk,
            "environment": envs["test"].pk,
            "title": title,
            "justification": "Better recall.",
            "rollback_plan": "Roll back.",
            "window_start": start.strftime("%Y-%m-%dT%H:%M"),
            "window_end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "action": "file",
        },
    )
    assert response.context["form"].errors["title"]
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("name", ["Model\r\nRisk", "Model\tRisk", "Model\u2028Risk"])
def test_a_team_name_with_a_line_break_is_refused(org, name):
    with pytest.raises(ValidationError) as refused:
        org_services.team_create(actor=None, name=name, slug="model-risk-2")
    assert "name" in refused.value.message_dict


@pytest.mark.parametrize("name", ["loans\x07", "loans\x1b[0m"])
def test_a_dataset_name_with_a_control_character_is_refused(registrar, org, name):
    response = registrar.post("/api/v1/datasets/", helpers.dataset_payload(name=name))
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.fixture
def eager_tasks():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_notification_stuck_behind_a_broken_title_goes_out_on_one_line(
    requester, mailoutbox, eager_tasks
):
    stuck = Notification.objects.create(
        recipient=requester,
        key="cr-9-waiting",
        subject="CR-9 Release\r\nBcc: everyone@bank.example waits for you",
        body="Please sign.",
        reason="You are an approver.",
    )
    deliver_pending_notifications(0)
    assert len(mailoutbox) == 1
    subject = mailoutbox[0].subject
    assert "\r" not in subject and "\n" not in subject
    assert "Bcc: everyone@bank.example waits for you" in subject
    stuck.refresh_from_db()
    assert stuck.emailed_at is not None


# 5. Look-alike letters and direction controls in dataset names


@pytest.mark.parametrize(
    "name",
    [
        "l\u043eans",  # a Cyrillic o
        "\u0430ccounts",  # a Cyrillic a first
        "loans\u202egpj.csv",  # right-to-left override
        "loans\u2066x\u2069",  # isolate
        "loans\u200f",  # right-to-left mark
        "\uff4coans",  # fullwidth l
    ],
)
def test_a_dataset_name_obeys_the_model_name_rule(registrar, org, name):
    response = registrar.post("/api/v1/datasets/", helpers.dataset_payload(name=name))
    assert response.status_code == 400
    assert "name" in response.json()
    assert not DatasetVersion.objects.exists()


def test_plain_dataset_names_are_still_welcome(registrar, org):
    for name in ("loans", "transactions.daily", "risk/exposures_2026"):
        response = registrar.post("/api/v1/datasets/", helpers.dataset_payload(name=name))
        assert response.status_code == 201, response.json()


# 6. Unknown fields in registrations


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/datasets/", helpers.dataset_payload(colour="blue", owner="x")),
        ("/api/v1/models/", helpers.model_payload(colour="blue", owner="x")),
        ("/api/v1/models/credit-scoring/versions/", helpers.version_payload(colour="b", owner="x")),
    ],
)
def test_a_registration_with_unknown_fields_is_refused_naming_them(registrar, org, path, payload):
    helpers.register_model()
    helpers.register_dataset()
    before = (
        DatasetVersion.objects.count(),
        RegisteredModel.objects.count(),
        ModelVersion.objects.count(),
    )
    response = registrar.post(path, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"colour", "owner"}
    assert body["colour"] == ["Unknown field."]
    assert before == (
        DatasetVersion.objects.count(),
        RegisteredModel.objects.count(),
        ModelVersion.objects.count(),
    )


def test_an_unknown_field_in_a_dataset_reference_is_refused(registrar, org):
    helpers.register_model()
    helpers.register_dataset()
    payload = helpers.version_payload(
        datasets=[{"name": "loans", "version": "2026-11-01", "sha": "x"}]
    )
    response = registrar.post("/api/v1/models/credit-scoring/versions/", payload, format="json")
    assert response.status_code == 400
    assert response.json() == {"datasets": {"0": {"sha": ["Unknown field."]}}}


def test_the_schema_says_registrations_take_no_other_fields(client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    for name in ("DatasetVersionInputRequest", "ModelInputRequest", "ModelVersionInputRequest"):
        assert components[name]["additionalProperties"] is False


# 7. NUL characters in headers


@pytest.mark.parametrize(
    "header", ["HTTP_AUTHORIZATION", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_ACCEPT"]
)
def test_a_nul_in_a_header_is_a_400_on_the_api(ci, header):
    # The client's own credentials would replace an Authorization header given per request.
    client = APIClient() if header == "HTTP_AUTHORIZATION" else ci.client()
    response = client.get("/api/v1/models/", **{header: "Bearer gh_abc\x00def"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"


@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "HTTP_COOKIE", "HTTP_REFERER"])
def test_a_nul_in_a_header_is_a_400_on_a_page(login, requester, header):
    response = login(requester).get("/", **{header: "x\x00y"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_a_nul_in_the_user_agent_of_a_sign_in_is_a_400(client, requester, password):
    response = client.post(
        "/login/",
        {"username": "requester", "password": "wrong"},
        HTTP_USER_AGENT="Mozilla\x00",
    )
    assert response.status_code == 400


def test_a_nul_in_a_form_field_is_a_field_error(login, requester, envs, version):
    start = timezone.now() + timedelta(days=2)
    response = login(requester).post(
        "/releases/change-requests/new/",
        {
            "model_version": version.pk,
            "environment": envs["test"].pk,
            "title": "Release\x00",
            "justification": "Better\x00 recall.",
            "rollback_plan": "Roll back.",
            "window_start": start.strftime("%Y-%m-%dT%H:%M"),
            "window_end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "action": "file",
        },
    )
    assert response.context["form"].errors["title"]
    assert not ChangeRequest.objects.exists()
