import time

import pytest
from django.core import mail
from django.db import transaction

from portal.models import Notification
from portal.notifications import notify
from portal.tasks import deliver_notification, deliver_pending_notifications
from tests.conftest import TRANSACTIONAL_APPS
from tests.worker import flaky_mail
from tests.worker.conftest import point_celery_at, wait_for

pytestmark = pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)


def mails_to(address):
    return [m for m in mail.outbox if address in m.to]


def tell(user, key):
    return notify(
        recipients=[user],
        key=key,
        subject=f"subject {key}",
        body="A change waits for you.",
        reason="You approve for Model Risk.",
        link="/releases/",
    )


def test_mail_goes_out_after_commit_and_not_after_rollback(worker, mailoutbox, requester):
    with transaction.atomic():
        tell(requester, "committed")
    wait_for(lambda: mails_to(requester.email))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        tell(requester, "rolled-back")
        raise Abort
    time.sleep(1.5)
    assert [m.subject for m in mails_to(requester.email)] == ["[Gatehouse] subject committed"]
    assert not Notification.objects.filter(key="rolled-back").exists()
    sent = Notification.objects.get(key="committed")
    assert sent.emailed_at is not None
    assert "Why you got this: You approve for Model Risk." in mail.outbox[0].body


def test_transient_mail_failure_is_retried_and_sent_once(worker, settings, requester):
    settings.EMAIL_BACKEND = "tests.worker.flaky_mail.FlakyEmailBackend"
    mail.outbox = []
    flaky_mail.failures_left["count"] = 2
    flaky_mail.attempts["count"] = 0
    with transaction.atomic():
        tell(requester, "flaky")
    wait_for(lambda: mails_to(requester.email), timeout=60)
    time.sleep(1)
    assert len(mails_to(requester.email)) == 1
    assert flaky_mail.attempts["count"] == 3


def test_running_the_task_twice_has_one_effect(worker, mailoutbox, requester):
    with transaction.atomic():
        (notification,) = tell(requester, "twice")
    wait_for(lambda: Notification.objects.get(pk=notification.pk).emailed_at)
    deliver_notification.delay(notification.pk)
    deliver_notification.delay(notification.pk)
    time.sleep(1.5)
    assert len(mails_to(requester.email)) == 1


def test_broker_outage_delays_but_does_not_lose_the_mail(worker, broker, mailoutbox, requester):
    working_options = dict(worker.app.conf.broker_transport_options or {})
    point_celery_at("redis://127.0.0.1:1/0", {"max_retries": 0})
    with transaction.atomic():
        (notification,) = tell(requester, "outage")
    assert Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).exists()
    point_celery_at(broker, working_options)
    assert not mails_to(requester.email)
    deliver_pending_notifications.delay(0)
    wait_for(lambda: mails_to(requester.email))
    assert Notification.objects.get(pk=notification.pk).emailed_at is not None
