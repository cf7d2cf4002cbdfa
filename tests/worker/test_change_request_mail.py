"""The mail a submitted change sends goes through a real worker after commit, never for a
submission that rolled back."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from portal.models import Notification
from registry.builders import build_register
from releases.builders import environments_create
from releases.services import change_requests
from tests.conftest import TRANSACTIONAL_APPS
from tests.worker.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)


def draft(org, requester, version):
    environments = environments_create()
    build = build_register("mail-model", version)
    start = timezone.now() + timedelta(hours=2)
    return change_requests.change_request_create(
        actor=requester,
        model_version=build,
        environment=environments["test"],
        title="Release to test",
        justification="Better recall.",
        rollback_plan="Roll back in the portal.",
        window_start=start,
        window_end=start + timedelta(hours=4),
    )


def test_submitting_mails_the_peer_after_commit_and_not_after_rollback(
    worker, mailoutbox, org, requester, peer
):
    class Abort(Exception):
        pass

    rolled_back = draft(org, requester, "1.0")
    with pytest.raises(Abort), transaction.atomic():
        change_requests.change_request_submit(actor=requester, change_request=rolled_back)
        raise Abort
    time.sleep(1.5)
    assert [m for m in mail.outbox if peer.email in m.to] == []
    assert not Notification.objects.filter(recipient=peer).exists()

    change_requests.change_request_submit(actor=requester, change_request=rolled_back)
    to_peer = wait_for(lambda: [m for m in mail.outbox if peer.email in m.to])
    assert len(to_peer) == 1
    assert rolled_back.number in to_peer[0].subject and "peer review" in to_peer[0].subject
    assert "the requester's team" in to_peer[0].body
    assert not [m for m in mail.outbox if requester.email in m.to]
