"""Issue 19: sessions end after an idle timeout, the top bar says until when, and a person can
sign out everywhere from their profile (audited)."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from audit.actions import AuditAction
from audit.models import AuditEvent
from tests.portal.test_settings import production_env, run_manage

pytestmark = pytest.mark.django_db


def signed_in(user, password) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


def idle_seconds(tmp_path, **env) -> str:
    result = run_manage(
        tmp_path,
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_AGE, s.SESSION_SAVE_EVERY_REQUEST)",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_idle_timeout_is_30_minutes_in_production_and_configurable(tmp_path):
    assert idle_seconds(tmp_path, **production_env()) == "1800 True"
    configured = production_env(GATEHOUSE_SESSION_IDLE_MINUTES="10")
    assert idle_seconds(tmp_path, **configured) == "600 True"


def test_every_request_moves_the_end_of_the_session(settings, requester, password):
    settings.SESSION_COOKIE_AGE = 600
    client = signed_in(requester, password)

    first = client.get(reverse("dashboard")).context["session_ends_at"]
    second = client.get(reverse("dashboard")).context["session_ends_at"]

    assert second >= first
    body = client.get(reverse("dashboard")).content.decode()
    assert "Signed in as" in body and " until " in body


def test_signing_out_everywhere_ends_every_session_of_the_person_only(requester, peer, password):
    laptop = signed_in(requester, password)
    phone = signed_in(requester, password)
    colleague = signed_in(peer, password)

    response = laptop.post(reverse("sign-out-everywhere"), {"confirm": "yes"})

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert phone.get(reverse("dashboard")).status_code == 302
    assert laptop.get(reverse("dashboard")).status_code == 302
    assert colleague.get(reverse("dashboard")).status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.USER_SESSIONS_ENDED)
    assert event.actor_name == requester.username
    assert event.object_id == str(requester.pk)
    assert event.data == {"sessions_ended": 2}
    assert Session.objects.count() >= 1


def test_without_the_confirmation_nothing_ends(requester, password):
    laptop = signed_in(requester, password)

    response = laptop.post(reverse("sign-out-everywhere"))

    assert response.status_code == 400
    assert "Tick the box to confirm" in response.content.decode()
    assert laptop.get(reverse("dashboard")).status_code == 200
    assert not AuditEvent.objects.filter(action=AuditAction.USER_SESSIONS_ENDED).exists()


def test_signing_out_everywhere_needs_a_post(requester, password):
    laptop = signed_in(requester, password)

    assert laptop.get(reverse("sign-out-everywhere")).status_code == 405
    assert laptop.get(reverse("dashboard")).status_code == 200
