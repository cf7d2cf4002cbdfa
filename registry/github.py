"""GitHub as a GitHub App: check a webhook's signature, get an installation token, answer a
deployment protection rule.

The App's id, private key and webhook secret come from the settings (the environment), never from
the database. Outbound calls go only to `settings.GITHUB_API_URL` (GitHub Enterprise Server sets
its own), so a callback URL in a payload cannot send the installation token anywhere else.
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings

from portal.exceptions import Conflict

REQUEST_TIMEOUT_SECONDS = 10
API_VERSION = "2022-11-28"


def signature_valid(body: bytes, signature: str) -> bool:
    """`X-Hub-Signature-256` is `sha256=` and the HMAC-SHA256 of the raw body under the App's
    webhook secret; compared in constant time. Without a secret nothing is valid."""
    secret = settings.GITHUB_APP_WEBHOOK_SECRET
    if not secret:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def app_jwt(now: float | None = None) -> str:
    """The App's own credential: an RS256 JSON Web Token, valid ten minutes at most (GitHub's
    limit), issued a minute in the past against clock drift."""
    if not (settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY):
        raise Conflict(
            "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are not set.", code="no_github_app"
        )
    issued = int(now if now is not None else time.time()) - 60
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": issued, "exp": issued + 540, "iss": settings.GITHUB_APP_ID}
    signing_input = ".".join(
        _base64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    key = serialization.load_pem_private_key(settings.GITHUB_APP_PRIVATE_KEY.encode(), None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_base64url(signature)}"


def callback_url_check(url: str) -> None:
    if not url.startswith(f"{settings.GITHUB_API_URL}/"):
        raise Conflict(
            f"The callback URL {url} is not on {settings.GITHUB_API_URL}.",
            code="foreign_callback_url",
        )


def _call(url: str, *, token: str, body: dict) -> bytes:
    callback_url_check(url)
    request = urllib.request.Request(  # noqa: S310 - the URL is on the configured API
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-GitHub-Api-Version": API_VERSION,
        },
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310 - on the configured API
        return response.read()


def installation_token(installation_id: int) -> str:
    """A short-lived token acting as the App's installation on the repository's account."""
    url = f"{settings.GITHUB_API_URL}/app/installations/{installation_id}/access_tokens"
    return json.loads(_call(url, token=app_jwt(), body={}))["token"]


def protection_rule_answer(
    callback_url: str,
    *,
    installation_id: int,
    environment: str,
    approved: bool,
    comment: str,
) -> None:
    """Approve or reject the workflow run's deployment on the callback URL its event named."""
    _call(
        callback_url,
        token=installation_token(installation_id),
        body={
            "environment_name": environment,
            "state": "approved" if approved else "rejected",
            "comment": comment,
        },
    )
