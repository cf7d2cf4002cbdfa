"""A token is shown once, to the person who issues it, and nowhere else: not in any log line
(SQL included) and not in any audit event, whether it is used rightly, wrongly or after its
revocation."""

import io
import logging

import pytest
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from audit.models import AuditEvent
from organisation import services
from portal.models import ServiceToken


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.django_db
def test_an_issued_token_appears_in_no_log_and_no_audit_event(org, caplog, monkeypatch):
    start = _tail()
    caplog.set_level(logging.DEBUG)
    # Log every SQL statement with its parameters, as DEBUG would.
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    monkeypatch.setattr(connections["default"], "force_debug_cursor", True)
    out = io.StringIO()
    call_command(
        "create_service_account",
        "ci-secrets",
        "--team",
        "data-science",
        "--scopes",
        "registry:write,gate:read,deployments:write,audit:read",
        stdout=out,
    )
    token = out.getvalue().strip().splitlines()[-1]
    secret = token.rsplit("_", 1)[1]
    assert token.startswith("gh_") and len(secret) == 64

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT="gitlab-runner")
    assert client.get("/api/v1/whoami/").status_code == 200
    registered = client.post(
        "/api/v1/datasets/",
        {"name": "transactions", "version": "2026-11", "uri": "s3://d/t", "sha256": "a" * 64},
        format="json",
    )
    assert registered.status_code == 201
    assert client.post("/api/v1/datasets/", {"name": "bad name"}, format="json").status_code == 400
    assert client.get("/api/v1/audit/events/").status_code == 200

    stored = ServiceToken.objects.get(service_account__name="ci-secrets")
    services.service_token_revoke(actor=None, token=stored)
    assert client.get("/api/v1/whoami/").status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=f"Bearer {token[:-1]}0")
    assert wrong.get("/api/v1/whoami/").status_code == 401

    assert "SELECT" in caplog.text  # the SQL was logged, so the check below means something
    assert "Unauthorized: /api/v1/whoami/" in caplog.text
    for text in (token, secret, token[:-1] + "0"):
        assert text not in caplog.text
    events = AuditEvent.objects.filter(seq__gt=start)
    assert {"service_token.issued", "dataset_version.registered", "service_token.revoked"} <= set(
        events.values_list("action", flat=True)
    )
    for event in events:
        assert secret not in event.body, event.action
        assert secret not in str(event.data), event.action
        assert secret not in event.user_agent + event.request_id
