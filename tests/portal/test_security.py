import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_sign_in_locks_after_five_failures_even_with_the_right_password(
    client, requester, password
):
    for _ in range(5):
        client.post(reverse("login"), {"username": "requester", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "requester", "password": password})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    # How long to wait, and who helps when it was not them.
    assert "locked for 15\xa0minutes" in page
    assert "ask an administrator" in page
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_user_so_others_still_sign_in(client, requester, peer, password):
    for _ in range(5):
        client.post(reverse("login"), {"username": "requester", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "peer", "password": password})
    assert response.status_code == 302


def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "http" not in policy


def test_responses_carry_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n")
    assert forged["X-Request-ID"] != "bad id\n"
    assert len(forged["X-Request-ID"]) == 32
