"""Pipelines fetch the CI helper with their token and check it against its published sha256."""

import hashlib
import subprocess

import pytest
from django.test import Client
from django.urls import reverse

from organisation.services import service_token_revoke
from registry.views import CI_HELPER
from tests.conftest import TRANSACTIONAL_APPS

HELPER_SHA256 = hashlib.sha256(CI_HELPER.read_bytes()).hexdigest()


def token_client(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.mark.parametrize("scope", ["gate:read", "audit:read", "metrics:read"])
def test_any_valid_token_downloads_the_helper_with_its_version_and_digest(service_caller, scope):
    response = token_client(service_caller(scope).secret).get(reverse("registry:ci-helper"))

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == HELPER_SHA256
    assert response["X-Gatehouse-CI-SHA256"] == HELPER_SHA256
    assert response["X-Gatehouse-CI-Version"] == "3"
    assert b'VERSION = "3"' in body


def test_the_digest_is_published_in_sha256sum_format(service_caller, login, requester):
    by_token = token_client(service_caller("gate:read").secret).get(
        reverse("registry:ci-helper-sha256")
    )
    by_person = login(requester).get(reverse("registry:ci-helper-sha256"))

    for response in (by_token, by_person):
        assert response.status_code == 200
        assert response.content.decode() == f"{HELPER_SHA256}  gatehouse_ci.py\n"
        assert response["X-Gatehouse-CI-Version"] == "3"


def test_a_wrong_or_revoked_token_gets_401_not_the_helper(service_caller, org):
    caller = service_caller("gate:read")
    service_token_revoke(actor=None, token=caller.account.tokens.get())

    for secret in (caller.secret, "gh_nope_nope", "not-a-token"):
        for name in ("registry:ci-helper", "registry:ci-helper-sha256"):
            response = token_client(secret).get(reverse(name))
            assert response.status_code == 401, (secret, name)
            assert response["WWW-Authenticate"].startswith("Bearer")
            assert HELPER_SHA256 not in response.content.decode()


def test_without_credentials_it_is_the_sign_in_page_and_post_is_not_allowed(client, ci, db):
    for name in ("registry:ci-helper", "registry:ci-helper-sha256"):
        anonymous = client.get(reverse(name))
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith("/login/")
        assert token_client(ci.secret).post(reverse(name)).status_code == 405


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_a_pipeline_fetches_and_checks_it_with_curl_and_sha256sum(live_server, ci, tmp_path):
    """What docs/ci.md tells a pipeline to run, run."""
    header = f"Authorization: Bearer {ci.secret}"
    script = (
        f'curl -fsS -H "{header}" -O {live_server.url}/registry/ci/gatehouse_ci.py && '
        f'curl -fsS -H "{header}" -O {live_server.url}/registry/ci/gatehouse_ci.py.sha256 && '
        "sha256sum -c gatehouse_ci.py.sha256"
    )
    fetched = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "gatehouse_ci.py: OK" in fetched.stdout

    (tmp_path / "gatehouse_ci.py").write_text("print('tampered')\n")
    tampered = subprocess.run(
        ["sha256sum", "-c", "gatehouse_ci.py.sha256"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tampered.returncode != 0
