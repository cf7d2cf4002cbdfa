"""Chat and signed webhooks: what the trail's events become, sent to a real HTTP endpoint in a
thread, signed as Standard Webhooks asks (checked with the independent `standardwebhooks`
package), retried with back-off, exactly once per subscription and event."""

import json
from datetime import timedelta
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from standardwebhooks import Webhook

from audit.models import AuditEvent
from integrations import webhooks as services
from integrations.models import (
    DeliveryStatus,
    TrailCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEventType,
    WebhookKind,
)
from integrations.tasks import deliver_webhooks
from integrations.webhook_delivery import (
    CONSUMER,
    MAX_ATTEMPTS,
    deliveries_due,
    webhook_delivery_attempt,
    webhooks_fan_out,
)
from portal.celery import app as celery_app
from portal.exceptions import NotFound
from releases.builders import deploy, file_change, sign
from releases.cluster import ObservedWorkload
from releases.models import WorkloadKind
from releases.services.change_requests import change_request_cancel
from releases.services.deployments import deployment_rollback, health_check_record
from releases.services.policy import environment_update
from releases.services.runtime import cluster_reading_failed, workloads_observed_record
from releases.states import Kind
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS
from tests.integrations.webhook_receiver import start_receiver

pytestmark = pytest.mark.django_db
ALL = WebhookEventType.values


@pytest.fixture
def receiver():
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def subscribe(administrator, receiver, envs):
    def make(kind=WebhookKind.STANDARD, *, event_types=ALL, environments=(), name=None, url=None):
        return services.webhook_subscription_create(
            actor=administrator,
            name=name or f"{kind} hook",
            kind=kind,
            url=url or receiver.url,
            event_types=list(event_types),
            environments=list(environments),
        )

    return make


def run() -> list[WebhookAttempt]:
    """What the periodic task does, in this thread: fan out, then send what is due."""
    webhooks_fan_out()
    return [webhook_delivery_attempt(delivery_id=pk) for pk in deliveries_due()]


def test_a_standard_webhook_is_signed_so_that_the_reference_library_verifies_it(
    subscribe, receiver, filed_change, peer
):
    issued = subscribe()
    assert issued.secret.startswith("whsec_")
    # Filed before the subscription existed: the past is not sent.
    assert run() == []
    change = filed_change
    sign(peer, change)

    [attempt] = run()

    assert attempt.succeeded and attempt.number == 1
    [post] = receiver.received
    payload = Webhook(issued.secret).verify(post.body, post.headers)
    delivery = WebhookDelivery.objects.get()
    assert post.headers["webhook-id"] == delivery.message_id
    assert payload["type"] == "change_request.signed"
    data = payload["data"]
    assert data["change_request"]["number"] == change.number
    assert data["waiting_for"] == ["Model Risk", "Platform Operations", "Release Management"]
    assert data["summary"] == (
        f"{change.number} fraud-detector 1.0.0 to prod: Per Eriksen signed as peer reviewer; "
        "it waits for Model Risk, Platform Operations and Release Management"
    )
    assert data["url"] == f"http://127.0.0.1:8000/releases/change-requests/{change.number}/"
    event = AuditEvent.objects.get(seq=data["audit_event"]["seq"])
    assert (event.action, event.hash) == ("change_request.signed", data["audit_event"]["hash"])
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(post.body, post.headers)


def test_a_500_then_a_200_is_one_delivery_with_two_attempts(
    subscribe, receiver, new_change, django_clock
):
    issued = subscribe()
    receiver.answer(500, body="database locked")
    new_change()

    [first] = run()
    assert (first.status_code, first.error) == (500, "HTTP 500 Internal Server Error")
    assert first.answer == "database locked"
    assert first.retry_at == django_clock.now + timedelta(seconds=30)
    assert run() == []  # not due before its back-off

    django_clock.advance(seconds=31)
    [second] = run()

    assert second.succeeded and second.number == 2
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert list(delivery.log.values_list("number", "status_code")) == [(1, 500), (2, 200)]
    one, two = receiver.received
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == delivery.message_id
    assert one.body == two.body
    Webhook(issued.secret).verify(two.body, two.headers)


def test_a_429_is_retried_when_its_retry_after_says(subscribe, receiver, new_change, django_clock):
    subscribe(WebhookKind.SLACK)
    receiver.answer(429, {"Retry-After": "120"}, "rate_limited")
    new_change()

    [first] = run()
    assert first.status_code == 429
    assert first.retry_at == django_clock.now + timedelta(seconds=120)
    django_clock.advance(seconds=60)  # past the usual 30 s back-off, before Retry-After
    assert run() == []
    django_clock.advance(seconds=61)
    [second] = run()
    assert second.succeeded
    assert len(receiver.received) == 2


def test_a_subscription_gets_only_its_environments_and_event_types(
    subscribe, receiver, new_change, requester
):
    subscribe(WebhookKind.TEAMS, event_types=["change_request.waiting"], environments=["test"])
    new_change("prod")
    in_test = new_change("test")
    change_request_cancel(actor=requester, change_request=in_test, reason="Wrong build.")

    run()

    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event_type, delivery.event.environment) == ("change_request.waiting", "test")
    [post] = receiver.received
    card = post.json()["attachments"][0]["content"]
    assert card["body"][0]["text"] == (
        f"{in_test.number} fraud-detector 1.0.0 to test was submitted by Rhea Quinn; it is now "
        "cancelled"
    )


def test_each_event_goes_once_to_a_subscription_under_the_first_type_it_asked_for(
    subscribe, receiver, filed_change, peer
):
    subscribe(name="signatures", event_types=["change_request.signed", "change_request.waiting"])
    subscribe(name="waiting only", event_types=["change_request.waiting"])
    sign(peer, filed_change)

    run()

    types = dict(WebhookDelivery.objects.values_list("subscription__name", "event_type"))
    assert types == {
        "signatures": "change_request.signed",
        "waiting only": "change_request.waiting",
    }
    assert len(receiver.received) == 2


def test_a_rolled_back_fan_out_delivers_nothing_and_the_next_run_delivers_once(
    subscribe, receiver, new_change, monkeypatch
):
    subscribe(WebhookKind.SLACK)
    change = new_change()
    cursor_before = TrailCursor.objects.filter(name=CONSUMER).values_list("last_seq", flat=True)
    before = list(cursor_before)

    def broken(*args):
        raise ConnectionError("the worker lost its database half way")

    with monkeypatch.context() as patched:
        patched.setattr("integrations.webhook_delivery.render", broken)
        with pytest.raises(ConnectionError):
            webhooks_fan_out()

    assert WebhookDelivery.objects.count() == 0
    assert list(cursor_before) == before
    run()
    run()
    [post] = receiver.received
    assert change.number in post.json()["text"]
    assert WebhookDelivery.objects.count() == 1


def test_the_database_refuses_a_second_delivery_of_an_event_to_a_subscription(
    subscribe, new_change
):
    subscribe()
    new_change()
    [delivery] = webhooks_fan_out()
    twin = WebhookDelivery(
        subscription=delivery.subscription,
        event=delivery.event,
        event_type=delivery.event_type,
        body=delivery.body,
        message_id="msg_twin",
        created_at=delivery.created_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


def test_no_body_carries_a_secret_a_token_or_the_chat_urls_path(
    subscribe, receiver, ci, new_change, peer, model_risk_approver
):
    secret = subscribe(WebhookKind.STANDARD).secret
    subscribe(WebhookKind.TEAMS)
    subscribe(WebhookKind.SLACK)
    change = new_change()
    sign(peer, change)
    sign(model_risk_approver, change, "reject", comment="Backtest is too short.")

    run()

    bodies = [post.body for post in receiver.received]
    assert len(bodies) == 9
    for body in bodies:
        assert secret not in body and secret.removeprefix("whsec_") not in body
        assert ci.secret not in body and "s3cr3t-path-token" not in body
    slack = [json.loads(body)["text"] for body in bodies if '"blocks"' in body]
    assert slack[-1].endswith("was rejected by Rita Kovacs for Model Risk: Backtest is too short.")
    trail = "".join(AuditEvent.objects.values_list("body", flat=True))
    assert secret.removeprefix("whsec_") not in trail and "s3cr3t-path-token" not in trail


def test_slack_text_cannot_mention_the_channel(subscribe, receiver, new_change):
    subscribe(WebhookKind.SLACK)
    new_change(title="Release <!channel> & <https://evil.example|click>")
    run()
    [post] = receiver.received
    assert "<!channel>" not in post.body and "&lt;!channel&gt; &amp;" in post.body


def test_the_url_and_secret_are_stored_encrypted(subscribe):
    subscription = subscribe().subscription
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT url, secret FROM integrations_webhooksubscription WHERE id = %s",
            [subscription.pk],
        )
        url, secret = cursor.fetchone()
    assert "s3cr3t-path-token" not in url and "127.0.0.1" not in url
    assert not secret.startswith("whsec_")
    subscription.refresh_from_db()
    assert subscription.url.endswith("s3cr3t-path-token")
    assert subscription.url_hint.endswith("127.0.0.1:" + subscription.url.split(":")[2][:5] + "/…")


def test_a_rotated_secret_signs_alongside_the_previous_one_for_a_while(
    subscribe, receiver, administrator, new_change, django_clock, settings
):
    issued = subscribe()
    new = services.webhook_secret_rotate(actor=administrator, subscription=issued.subscription)
    assert new != issued.secret
    new_change()
    run()
    [post] = receiver.received
    assert len(post.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(post.body, post.headers)
    Webhook(issued.secret).verify(post.body, post.headers)

    django_clock.advance(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS, seconds=1)
    new_change()
    run()
    later = receiver.received[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    event = AuditEvent.objects.filter(action="webhook.secret_rotated").get()
    assert new not in event.body and issued.secret not in event.body


def test_deactivating_cancels_what_is_pending_and_sends_nothing_more(
    subscribe, receiver, administrator, new_change
):
    subscription = subscribe().subscription
    receiver.answer(500)
    new_change()
    run()
    services.webhook_subscription_deactivate(actor=administrator, subscription=subscription)
    new_change()

    assert run() == []
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["cancelled"]
    assert len(receiver.received) == 1
    event = AuditEvent.objects.filter(action="webhook.deactivated").get()
    assert event.data["cancelled_deliveries"] == 1


def test_a_delivery_gives_up_after_its_last_back_off(subscribe, receiver, new_change, django_clock):
    subscribe()
    for _ in range(MAX_ATTEMPTS):
        receiver.answer(502)
    new_change()
    for _ in range(MAX_ATTEMPTS):
        run()
        django_clock.advance(hours=7)
    run()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    delays = [
        attempt.retry_at - attempt.attempted_at
        for attempt in delivery.log.all()
        if attempt.retry_at
    ]
    assert delays == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
    ]


def test_a_gone_endpoint_fails_at_once_and_a_redirect_is_not_followed(
    subscribe, receiver, new_change
):
    subscribe()
    receiver.answer(410, body="channel_not_found")
    receiver.answer(302, {"Location": "https://elsewhere.example/"})
    new_change()
    new_change()

    gone, moved = run()

    assert gone.delivery.status == DeliveryStatus.FAILED
    assert (moved.status_code, moved.delivery.status) == (302, DeliveryStatus.PENDING)
    assert "not followed" in moved.error


def test_an_endpoint_that_does_not_answer_is_logged_without_its_url(subscribe, new_change):
    subscribe(WebhookKind.SLACK, url="http://127.0.0.1:9/hooks/T1/B2/s3cr3t-path-token")
    new_change()
    [attempt] = run()
    assert attempt.status_code is None
    assert attempt.error.startswith("No answer") and "s3cr3t" not in attempt.error


def test_the_periodic_task_fans_out_and_hands_each_due_delivery_to_a_worker(
    subscribe, receiver, new_change, django_capture_on_commit_callbacks
):
    subscribe()
    new_change()
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver_webhooks.delay().get() == 1
    finally:
        celery_app.conf.task_always_eager = saved
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1


def test_send_test_posts_at_once_is_audited_and_is_never_retried(
    subscribe, receiver, administrator
):
    issued = subscribe()
    attempt = services.webhook_test_send(actor=administrator, subscription=issued.subscription)
    assert attempt.succeeded
    [post] = receiver.received
    assert Webhook(issued.secret).verify(post.body, post.headers)["type"] == "gatehouse.test"

    receiver.answer(503, body="maintenance")
    failed = services.webhook_test_send(actor=administrator, subscription=issued.subscription)
    assert failed.status_code == 503 and failed.delivery.status == DeliveryStatus.FAILED
    assert deliveries_due() == []
    tested = AuditEvent.objects.filter(action="webhook.tested")
    assert tested.count() == 2
    assert {e.data["message_id"] for e in tested} == set(
        WebhookDelivery.objects.values_list("message_id", flat=True)
    )


@pytest.mark.parametrize(
    ("url", "local_http", "message"),
    [
        ("http://hooks.example.com/x", True, "must use https"),
        ("http://127.0.0.1:8080/x", False, "must use https"),
        ("https://user:pw@hooks.example.com/x", True, "no user name"),
        ("ftp://hooks.example.com/x", True, "full https"),
        ("hooks.example.com/x", True, "full https"),
    ],
)
def test_urls_must_be_https_except_to_this_machine_when_allowed(
    administrator, envs, settings, url, local_http, message
):
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = local_http
    with pytest.raises(ValidationError, match=message):
        services.webhook_subscription_create(
            actor=administrator, name="x", kind="slack", url=url, event_types=ALL
        )
    assert not AuditEvent.objects.filter(action="webhook.created").exists()


def test_local_http_is_accepted_when_the_setting_allows_it(administrator, envs, settings):
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = True
    for n, url in enumerate(["http://127.0.0.1:9000/h", "http://localhost/h", "http://[::1]/h"]):
        services.webhook_subscription_create(
            actor=administrator, name=f"local {n}", kind="slack", url=url, event_types=ALL
        )


def test_unknown_event_types_and_environments_are_refused(administrator, envs):
    with pytest.raises(ValidationError, match=r"Unknown event types: gate\.checked"):
        services.webhook_subscription_create(
            actor=administrator,
            name="x",
            kind="slack",
            url="https://hooks.slack.com/services/T/B/x",
            event_types=["gate.checked"],
        )
    with pytest.raises(NotFound, match="No environment is named 'staging'"):
        services.webhook_subscription_create(
            actor=administrator,
            name="x",
            kind="slack",
            url="https://hooks.slack.com/services/T/B/x",
            event_types=ALL,
            environments=["staging"],
        )


def test_the_trail_records_each_change_without_the_url_path(administrator, subscribe):
    subscription = subscribe(WebhookKind.SLACK).subscription
    services.webhook_subscription_update(
        actor=administrator,
        subscription=subscription,
        name="release channel",
        event_types=["change_request.waiting"],
        environments=["prod"],
        is_active=True,
        url="https://hooks.slack.com/services/T9/B9/other-s3cr3t",
    )
    # The same again changes nothing and writes nothing.
    services.webhook_subscription_update(
        actor=administrator,
        subscription=subscription,
        name="release channel",
        event_types=["change_request.waiting"],
        environments=["prod"],
        is_active=True,
    )
    created, updated = AuditEvent.objects.filter(action__startswith="webhook.").order_by("seq")
    assert created.action == "webhook.created" and updated.action == "webhook.updated"
    assert updated.data["after"] == {
        "name": "release channel",
        "kind": "slack",
        "url": "https://hooks.slack.com/…",
        "event_types": ["change_request.waiting"],
        "environments": ["prod"],
        "team": None,
        "is_active": True,
    }
    assert updated.data["url_changed"] is True
    assert "s3cr3t" not in created.body + updated.body


def test_the_first_run_starts_at_the_oldest_subscription_not_at_the_start_of_the_trail(
    new_change, subscribe
):
    new_change()
    tail = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert webhooks_fan_out() == []
    assert TrailCursor.objects.get(name=CONSUMER).last_seq == tail

    TrailCursor.objects.filter(name=CONSUMER).delete()
    subscription = subscribe().subscription
    new_change()
    assert len(webhooks_fan_out()) == 1
    assert subscription.starts_after_seq == tail


def test_what_each_kind_of_event_says(
    subscribe, receiver, envs, builds, ci, clock, approved_for_test, requester
):
    subscribe()
    approved = approved_for_test("1.0")
    deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.0"],
        change_request=approved,
        clock=clock,
    )
    deploy(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.1"],
        clock=clock,
        succeed=False,
        detail="OOMKilled",
    )
    live = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.2"], clock=clock
    )
    health_check_record(
        deployment=live, ok=True, reported_sha256=builds["1.0"].artifact_sha256, now=clock.now
    )
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    deployment_rollback(
        actor=ci.account, environment="dev", model="fraud-score", reason="Scores drift."
    )
    emergency = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["prod"],
        kind=Kind.EMERGENCY,
        now=clock.now,
    )

    run()

    said = [(post.json()["type"], post.json()["data"]["summary"]) for post in receiver.received]
    number = approved.number
    assert said == [
        (
            "change_request.submitted",
            f"{number} fraud-score 1.0 to test was submitted by Rhea Quinn; it is now deployed",
        ),
        (
            "change_request.approved",
            f"{number} fraud-score 1.0 to test is approved: Per Eriksen signed as peer reviewer",
        ),
        ("change_request.deployed", f"{number} fraud-score 1.0 to test is deployed"),
        ("deployment.failed", "Deployment of fraud-score 1.1 to dev failed: OOMKilled"),
        (
            "deployment.unauthorised_change",
            f"Unauthorised change: fraud-score in dev serves {builds['1.0'].artifact_sha256[:12]}…",
        ),
        (
            "deployment.rolled_back",
            f"fraud-score in dev was rolled back from 1.0 to 1.2 by {ci.account.name}: "
            "Scores drift.",
        ),
        (
            "emergency.submitted",
            f"Emergency change {emergency.number} fraud-score 1.1 to prod (incident INC-4711); "
            "it waits for an emergency approver",
        ),
    ]
    rolled_back = receiver.received[5].json()["data"]
    assert rolled_back["deployment"]["from_version"] == "1.0"
    assert rolled_back["url"].endswith(f"/releases/deployments/{rolled_back['deployment']['id']}/")
    assert receiver.received[3].json()["data"]["change_request"] is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent workers need PostgreSQL")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_workers_racing_for_one_delivery_send_it_once(subscribe, receiver, new_change):
    subscribe()
    new_change()
    [delivery] = webhooks_fan_out()

    results, errors = race(
        [partial(webhook_delivery_attempt, delivery_id=delivery.pk) for _ in range(4)]
    )

    assert errors == []
    assert len([attempt for attempt in results if attempt is not None]) == 1
    assert len(receiver.received) == 1
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1


def test_runtime_outages_reach_chat_once_when_they_begin_and_once_when_they_end(
    subscribe, receiver, envs, builds, ci, clock
):
    dev = environment_update(
        actor=None,
        environment=envs["dev"],
        rank=envs["dev"].rank,
        description="",
        cluster={
            "cluster_api_server": "https://api.ocp.bank.example:6443",
            "cluster_namespace": "models-dev",
        },
    )
    live = deploy(actor=ci.account, environment=dev, model_version=builds["1.0"], clock=clock)
    serving = ObservedWorkload(
        kind=WorkloadKind.DEPLOYMENT,
        name="fraud-score",
        model="fraud-score",
        annotation_sha256=builds["1.0"].artifact_sha256,
        pod_images=(),
        ready_replicas=1,
    )
    subscribe()

    workloads_observed_record(environment=dev, workloads=[])
    workloads_observed_record(environment=dev, workloads=[])
    cluster_reading_failed(environment=dev, error="403 Forbidden listing pods")
    cluster_reading_failed(environment=dev, error="403 Forbidden listing pods")
    workloads_observed_record(environment=dev, workloads=[serving])
    workloads_observed_record(environment=dev, workloads=[serving])
    run()

    said = [(post.json()["type"], post.json()["data"]["summary"]) for post in receiver.received]
    assert [kind for kind, _ in said] == [
        "runtime.not_running",
        "cluster.unreachable",
        "runtime.running_again",
        "cluster.readable_again",
    ]
    assert said[0][1].startswith(
        "fraud-score in dev is not running: no workload of namespace models-dev serves "
        "fraud-score 1.0 since "
    )
    assert said[1][1] == (
        "The cluster namespace models-dev of dev cannot be read: 403 Forbidden listing pods"
    )
    assert said[2][1].startswith("fraud-score in dev is running again in namespace models-dev")
    assert said[3][1].startswith("The cluster namespace models-dev of dev is read again")
    stopped = receiver.received[0].json()["data"]
    assert stopped["deployment"]["id"] == live.pk
    assert stopped["url"].endswith(f"/releases/deployments/{live.pk}/")
    assert receiver.received[1].json()["data"]["url"].endswith("/releases/environments/dev/")
