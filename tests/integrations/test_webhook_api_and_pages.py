"""Who manages webhook subscriptions (administrators; a token with `webhooks:write` only its
teams' ones), through the API, the admin and the pages, and that a signing secret or a chat
URL's path is never shown again once the subscription is made."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEvent
from integrations import webhooks as services
from integrations.models import WebhookDelivery, WebhookSubscription
from portal.models import Scope
from tests.integrations.webhook_receiver import start_receiver

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0/B0/s3cr3t-path-token"
STANDARD = {
    "name": "risk engine",
    "kind": "standard",
    "url": "https://risk.bank.example/gatehouse/s3cr3t-path-token",
    "event_types": ["change_request.waiting", "deployment.failed"],
    "environments": ["prod"],
}


@pytest.fixture
def receiver():
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def as_admin(login, administrator, envs):
    return login(administrator)


def _create(client, **overrides):
    return client.post(
        "/api/v1/webhooks/", {**STANDARD, **overrides}, content_type="application/json"
    )


def test_an_administrator_gets_the_secret_once_and_never_again(as_admin):
    created = _create(as_admin)
    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["url"] == "https://risk.bank.example/…"
    pk = body["id"]

    seen = [
        as_admin.get("/api/v1/webhooks/"),
        as_admin.get(f"/api/v1/webhooks/{pk}/"),
        as_admin.get(reverse("integrations:webhooks")),
        as_admin.get(reverse("integrations:webhook", args=[pk])),
        as_admin.get(reverse("admin:integrations_webhooksubscription_changelist")),
        as_admin.get(reverse("admin:integrations_webhooksubscription_change", args=[pk])),
    ]
    for response in seen:
        assert response.status_code == 200
        text = response.content.decode()
        assert secret not in text and secret.removeprefix("whsec_") not in text
        assert "s3cr3t-path-token" not in text
    assert "secret" not in seen[0].json()[0] and "secret" not in seen[1].json()
    assert "risk.bank.example/…" in seen[3].content.decode()


def test_a_chat_subscription_has_no_secret(as_admin):
    created = _create(as_admin, kind="slack", url=SLACK_URL)
    assert created.status_code == 201
    assert created.json()["secret"] is None
    rotated = as_admin.post(f"/api/v1/webhooks/{created.json()['id']}/rotate-secret/")
    assert rotated.status_code == 409
    assert rotated.json()["code"] == "no_signing_secret"
    assert "Only Standard Webhooks" in rotated.json()["detail"]


def test_rotation_over_the_api_returns_the_new_secret_once(as_admin):
    first = _create(as_admin).json()
    rotated = as_admin.post(f"/api/v1/webhooks/{first['id']}/rotate-secret/")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != first["secret"]
    assert new not in as_admin.get(f"/api/v1/webhooks/{first['id']}/").content.decode()
    assert AuditEvent.objects.filter(action="webhook.secret_rotated").count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"event_types": ["gate.checked"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"kind": "discord"}, "kind"),
        ({"url": "http://risk.bank.example/hook"}, "url"),
        ({"environments": ["no such environment"]}, "environments"),
        ({"team": "not a slug"}, "team"),
    ],
)
def test_bad_input_is_a_400_on_its_field(as_admin, payload, field):
    response = _create(as_admin, **payload)
    assert response.status_code == 400
    assert field in response.json()
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"environments": ["staging"]}, "unknown_environment"),
        ({"team": "no-such-team"}, "unknown_team"),
    ],
)
def test_names_that_name_nothing_are_404(as_admin, payload, code):
    response = _create(as_admin, **payload)
    assert response.status_code == 404
    assert response.json()["code"] == code
    assert not WebhookSubscription.objects.exists()


def test_people_who_are_not_administrators_manage_none(login, requester, change_manager, envs):
    for person in (requester, change_manager):
        client = login(person)
        assert client.get("/api/v1/webhooks/").json()["code"] == "webhooks_admin_only"
        assert _create(client).status_code == 403
        assert client.get(reverse("integrations:webhooks")).status_code == 403
    assert not WebhookSubscription.objects.exists()


def test_a_token_needs_the_webhooks_scope(service_caller, envs):
    client = service_caller(Scope.DEPLOYMENTS_WRITE, Scope.AUDIT_READ).client()
    assert client.get("/api/v1/webhooks/").status_code == 403
    response = client.post("/api/v1/webhooks/", STANDARD, format="json")
    assert response.status_code == 403
    assert "webhooks:write" in response.json()["detail"]


def test_a_token_manages_the_subscriptions_of_its_own_teams_only(
    service_caller, administrator, org, envs
):
    theirs = services.webhook_subscription_create(
        actor=administrator,
        name="model risk channel",
        kind="teams",
        url="https://bank.webhook.office.com/webhookb2/abc",
        event_types=["change_request.waiting"],
        team=org["model-risk"],
    ).subscription
    admins = services.webhook_subscription_create(
        actor=administrator,
        name="change office",
        kind="slack",
        url=SLACK_URL,
        event_types=["change_request.waiting"],
    ).subscription
    token = service_caller(Scope.WEBHOOKS_WRITE)
    client = token.client()

    mine = client.post("/api/v1/webhooks/", STANDARD, format="json")
    assert mine.status_code == 201
    assert mine.json()["team"] == "data-science"
    assert mine.json()["created_by_name"] == token.account.name
    other_team = client.post(
        "/api/v1/webhooks/", {**STANDARD, "name": "x", "team": "model-risk"}, format="json"
    )
    assert other_team.status_code == 403 and other_team.json()["code"] == "token_wrong_team"

    assert [s["name"] for s in client.get("/api/v1/webhooks/").json()] == ["risk engine"]
    for foreign in (theirs, admins):
        assert client.get(f"/api/v1/webhooks/{foreign.pk}/").status_code == 404
        assert client.post(f"/api/v1/webhooks/{foreign.pk}/rotate-secret/").status_code == 404
        assert client.post(f"/api/v1/webhooks/{foreign.pk}/deactivate/").status_code == 404
        foreign.refresh_from_db()
        assert foreign.is_active

    pk = mine.json()["id"]
    assert client.post(f"/api/v1/webhooks/{pk}/rotate-secret/").status_code == 200
    deactivated = client.post(f"/api/v1/webhooks/{pk}/deactivate/")
    assert deactivated.status_code == 200 and deactivated.json()["is_active"] is False
    actions = AuditEvent.objects.filter(object_id=str(pk), action__startswith="webhook.")
    assert list(actions.order_by("seq").values_list("action", "actor_name")) == [
        ("webhook.created", token.account.name),
        ("webhook.secret_rotated", token.account.name),
        ("webhook.deactivated", token.account.name),
    ]


def test_send_test_on_the_page_posts_now_and_shows_the_answer(as_admin, receiver, settings):
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = True
    pk = _create(as_admin, url=receiver.url).json()["id"]
    receiver.answer(202, body="accepted by the risk engine")

    response = as_admin.post(reverse("integrations:webhook-test", args=[pk]))

    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Test delivered: HTTP 202 in ")
    assert message.endswith("Answer: accepted by the risk engine")
    [post] = receiver.received
    assert post.json()["type"] == "gatehouse.test"
    page = as_admin.get(reverse("integrations:webhook", args=[pk])).content.decode()
    delivery = WebhookDelivery.objects.get()
    assert delivery.message_id in page and "HTTP 202" in page
    assert AuditEvent.objects.filter(action="webhook.tested").count() == 1


def test_send_test_tells_why_it_failed(as_admin, receiver, settings):
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = True
    pk = _create(as_admin, url=receiver.url).json()["id"]
    receiver.answer(401, body="bad signature")
    response = as_admin.post(reverse("integrations:webhook-test", args=[pk]))
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Test not delivered: HTTP 401 Unauthorized")
    assert message.endswith("Answer: bad signature")


def test_a_deactivated_subscription_sends_no_test(as_admin, administrator):
    pk = _create(as_admin).json()["id"]
    services.webhook_subscription_deactivate(
        actor=administrator, subscription=WebhookSubscription.objects.get(pk=pk)
    )
    response = as_admin.post(reverse("integrations:webhook-test", args=[pk]))
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == "The subscription is deactivated: activate it, then send the test."
    assert not WebhookDelivery.objects.exists()


def _admin_form(client, url: str) -> dict:
    form = client.get(url).context["adminform"].form
    return {
        "name": form.initial.get("name", ""),
        "kind": form.initial.get("kind", "") or "",
        "event_types": form.initial.get("event_types", []),
        "environments": form.initial.get("environments", ""),
        "is_active": "on",
    }


def test_the_admin_shows_the_new_secret_once_and_keeps_the_url_when_left_empty(as_admin):
    add = reverse("admin:integrations_webhooksubscription_add")
    response = as_admin.post(
        add,
        {
            "name": "risk engine",
            "kind": "standard",
            "new_url": "https://risk.bank.example/hook/s3cr3t-path-token",
            "event_types": ["deployment.failed"],
            "environments": "prod",
        },
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    subscription = WebhookSubscription.objects.get()
    assert [m for m in shown if m.endswith(subscription.secret)] == [
        f"Signing secret of risk engine (copy it now, it is not shown again): {subscription.secret}"
    ]
    assert subscription.environments == ["prod"]

    change = reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    page = as_admin.get(change).content.decode()
    assert subscription.secret not in page and "s3cr3t-path-token" not in page
    data = {**_admin_form(as_admin, change), "name": "risk engine (prod)", "new_url": ""}
    assert as_admin.post(change, data).status_code == 302
    subscription.refresh_from_db()
    assert subscription.name == "risk engine (prod)"
    assert subscription.url == "https://risk.bank.example/hook/s3cr3t-path-token"

    data["new_url"] = "http://risk.bank.example/hook"
    refused = as_admin.post(change, data)
    assert "must use https" in str(refused.context["adminform"].form.errors["new_url"])
