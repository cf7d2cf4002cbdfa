"""A GitHub App as an environment's custom deployment protection rule: GitHub's signed
`deployment_protection_rule` event (kept as a fixture in GitHub's documented shape) is judged and
answered on the run's callback URL with an installation token, against a GitHub stand-in on
127.0.0.1 that checks the App's JSON Web Token."""

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.test import Client

from registry import services as registry
from registry.builders import build_register
from releases.builders import file_change
from releases.models import Deployment, GateDecision, GatePurpose
from tests.stubs import JsonHandler, serving

pytestmark = pytest.mark.django_db

EVENT = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "github_deployment_protection_rule.json").read_text()
)
SHA = EVENT["deployment"]["sha"]
INSTALLATION = EVENT["installation"]["id"]
CALLBACK_PATH = urlparse(EVENT["deployment_callback_url"]).path
URL = "/api/v1/platforms/github/events/"
SECRET = "github-app-webhook-secret-77a1"
APP_ID = "913577"
INSTALLATION_TOKEN = "ghs_installation-token-for-the-test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unbase64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(authorization: str) -> dict | None:
    """The claims of the App's JSON Web Token, if the App's key signed it."""
    token = authorization.removeprefix("Bearer ")
    signing_input, _, signature = token.rpartition(".")
    try:
        KEY.public_key().verify(
            _unbase64url(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return None
    return json.loads(_unbase64url(signing_input.split(".")[1]))


class FakeGitHub(JsonHandler):
    """Installation tokens for a JWT the App's key signed; protection rule answers for them."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        authorization = self.headers.get("Authorization", "")
        self.server.calls.append((self.path, body, authorization))
        if self.path == f"/app/installations/{INSTALLATION}/access_tokens":
            claims = jwt_claims(authorization)
            if claims is None or claims["iss"] != APP_ID:
                return self.answer(401, {"message": "A JSON web token could not be decoded"})
            return self.answer(201, {"token": INSTALLATION_TOKEN, "expires_at": "2026-12-01T00Z"})
        if self.path == CALLBACK_PATH:
            if authorization != f"Bearer {INSTALLATION_TOKEN}":
                return self.answer(401, {"message": "Bad credentials"})
            self.send_response(204)
            self.end_headers()
            return None
        return self.answer(404, {"message": "Not Found"})


@pytest.fixture
def github_server(settings):
    with serving(FakeGitHub) as server:
        host, port = server.server_address
        settings.GITHUB_API_URL = f"http://{host}:{port}"
        settings.GITHUB_APP_ID = APP_ID
        settings.GITHUB_APP_PRIVATE_KEY = KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        settings.GITHUB_APP_WEBHOOK_SECRET = SECRET
        yield server


@pytest.fixture
def build(org):
    """CI registered the build of the commit the workflow run deploys, from the GitHub
    repository (named as its web URL)."""
    repository, _ = registry.repository_register(actor=None, url=EVENT["repository"]["html_url"])
    return build_register("fraud-score", "2.0", commit_sha=SHA, repository=repository.url)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def deliver(github_server):
    """GitHub sends the event, signed with the App's secret unless told otherwise."""

    def send(event_name="deployment_protection_rule", signature=None, body=None, **changes):
        if body is None:
            event = {**copy.deepcopy(EVENT), **changes}
            event["deployment_callback_url"] = changes.get(
                "deployment_callback_url", f"{github_server_url(github_server)}{CALLBACK_PATH}"
            )
            body = json.dumps(event).encode()
        headers = {"HTTP_X_GITHUB_EVENT": event_name}
        signature = sign(body) if signature is None else signature
        if signature:
            headers["HTTP_X_HUB_SIGNATURE_256"] = signature
        return Client().generic("POST", URL, body, content_type="application/json", **headers)

    return send


def github_server_url(server) -> str:
    host, port = server.server_address
    return f"http://{host}:{port}"


def answers(github_server) -> list[dict]:
    return [body for path, body, _ in github_server.calls if path == CALLBACK_PATH]


def test_an_unapproved_build_is_rejected_on_the_callback_with_the_reasons(
    envs, build, deliver, github_server
):
    response = deliver(environment="test")
    assert response.status_code == 200, response.content
    [answer] = answers(github_server)
    assert answer["environment_name"] == "test" and answer["state"] == "rejected"
    assert f"- {build}: no_approved_change: test needs an approved change" in answer["comment"]
    decision = GateDecision.objects.get()
    assert decision.purpose == GatePurpose.GITHUB_PROTECTION
    assert not decision.allowed and decision.model_version == build
    assert decision.question["github_installation_id"] == INSTALLATION
    assert f"#{decision.pk}" in answer["comment"]


def test_an_approved_build_is_approved_on_the_callback(
    envs, build, deliver, github_server, requester, peer, clock
):
    change = file_change(
        model_version=build,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    assert deliver(environment="test").json()["outcome"] == "approved"
    [answer] = answers(github_server)
    assert answer["state"] == "approved"
    assert f"under {change.number}" in answer["comment"]
    decision = GateDecision.objects.get(purpose=GatePurpose.GITHUB_PROTECTION)
    assert decision.allowed and decision.change_request == change


def test_the_answer_goes_with_an_installation_token_the_apps_key_obtained(
    envs, build, deliver, github_server
):
    deliver(environment="test")
    [(token_path, _, jwt), (callback_path, _, authorization)] = github_server.calls
    assert token_path == f"/app/installations/{INSTALLATION}/access_tokens"
    claims = jwt_claims(jwt)
    assert claims["iss"] == APP_ID and claims["exp"] - claims["iat"] <= 600
    assert (callback_path, authorization) == (CALLBACK_PATH, f"Bearer {INSTALLATION_TOKEN}")


def test_a_deployment_that_skips_the_pipelines_gate_call_is_still_stopped(
    envs, build, deliver, github_server
):
    """The workflow registered its build and its deploy job never asked the gate; the
    environment's protection rule holds the job and Gatehouse says no."""
    deliver(environment="prod")
    assert not GateDecision.objects.filter(
        purpose__in=[GatePurpose.CHECK, GatePurpose.DEPLOYMENT]
    ).exists()
    assert not Deployment.objects.exists()
    [answer] = answers(github_server)
    assert answer["state"] == "rejected" and "soak_not_met" in answer["comment"]


@pytest.mark.parametrize(
    "signature",
    [
        "",  # missing
        sign(json.dumps(EVENT).encode(), secret="another-secret"),
        "sha256=" + "0" * 64,
        "sha1=" + "0" * 40,
    ],
)
def test_a_wrong_signature_is_refused_and_nothing_is_done(
    envs, build, deliver, github_server, signature
):
    response = deliver(signature=signature)
    assert response.status_code == 403
    assert response.json()["code"] == "webhook_not_authentic"
    assert github_server.calls == []
    assert not GateDecision.objects.exists()


def test_a_body_changed_after_signing_is_refused(envs, build, deliver, github_server):
    signed = json.dumps(EVENT).encode()
    tampered = signed.replace(b'"environment": "test"', b'"environment": "dev"', 1)
    assert tampered != signed
    assert deliver(body=tampered, signature=sign(signed)).status_code == 403
    assert github_server.calls == []


def test_without_a_configured_secret_every_delivery_is_refused(
    envs, build, deliver, github_server, settings
):
    settings.GITHUB_APP_WEBHOOK_SECRET = ""
    body = json.dumps(EVENT).encode()
    assert deliver(body=body, signature=sign(body, secret="")).status_code == 403
    assert github_server.calls == []


def test_a_callback_url_off_the_configured_api_is_refused(envs, build, deliver, github_server):
    response = deliver(
        deployment_callback_url=EVENT["deployment_callback_url"].replace(
            "https://api.github.com", "https://attacker.example"
        )
    )
    assert response.status_code == 409
    assert response.json()["code"] == "foreign_callback_url"
    assert github_server.calls == []
    assert not GateDecision.objects.exists()


def test_an_unknown_repository_is_ignored(envs, build, deliver, github_server):
    repository = {**EVENT["repository"], "html_url": "https://github.com/acme-bank/other"}
    repository["clone_url"] = "https://github.com/acme-bank/other.git"
    assert deliver(repository=repository).status_code == 202
    assert github_server.calls == []


def test_other_events_are_ignored(envs, build, deliver, github_server):
    assert deliver(event_name="ping").status_code == 202
    assert github_server.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({**EVENT, "deployment": {"sha": "main"}}).encode(),
        json.dumps({**EVENT, "installation": None}).encode(),
        json.dumps({key: value for key, value in EVENT.items() if key != "repository"}).encode(),
    ],
)
def test_a_malformed_signed_payload_is_400_not_500(envs, build, deliver, github_server, body):
    assert deliver(body=body).status_code == 400
    assert github_server.calls == []


def test_an_app_github_does_not_accept_is_a_bad_gateway_and_no_answer(
    envs, build, deliver, github_server, settings
):
    """The rejection is recorded, but no installation token came: nothing reaches the run,
    which stays held (fail closed) until the event is delivered again."""
    settings.GITHUB_APP_ID = "another-app"
    response = deliver()
    assert response.status_code == 502
    assert response.json()["code"] == "platform_unreachable"
    assert answers(github_server) == []
