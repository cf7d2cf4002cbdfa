import pytest
from django.db import transaction

from portal.models import Notification
from portal.notifications import notification_deliver, notify

pytestmark = pytest.mark.django_db


def tell(users, key="cr-1-waiting"):
    return notify(
        recipients=users,
        key=key,
        subject="CR-1 waits for Model Risk",
        body="Rhea asks you to sign.",
        reason="You are an approver of Model Risk.",
        link="/releases/",
    )


def test_notify_is_once_per_person_and_event(requester, peer):
    assert len(tell([requester, peer, requester])) == 2
    assert tell([requester]) == []
    assert Notification.objects.count() == 2


def test_delivery_happens_once(requester, mailoutbox):
    (notification,) = tell([requester])
    assert notification_deliver(notification_id=notification.pk) is True
    assert notification_deliver(notification_id=notification.pk) is False
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [requester.email]
    assert "http://127.0.0.1:8000/releases/" in mailoutbox[0].body


def test_enqueued_only_on_commit(requester, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        tell([requester])
    assert len(callbacks) == 1


def test_page_shows_unread_count_reason_and_marks_read(login, requester):
    tell([requester])
    client = login(requester)
    page = client.get("/notifications/")
    assert b"You are an approver of Model Risk." in page.content
    assert b"Notifications, 1 unread" in page.content
    client.post("/notifications/read/")
    assert b"Notifications, 0 unread" in client.get("/").content


def test_notifications_are_private(login, requester, peer):
    tell([requester])
    assert b"CR-1 waits" not in login(peer).get("/notifications/").content
