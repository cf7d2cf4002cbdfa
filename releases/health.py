"""Probing the health endpoint of a live deployment ("if your application just dies, it will
not tell you"). The endpoint may report the artifact digest it serves (rule 14)."""

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

DIGEST_FIELDS = ("artifact_sha256", "sha256", "digest")


@dataclass(frozen=True)
class Probe:
    ok: bool
    latency_ms: int | None
    status_code: int | None
    reported_sha256: str
    detail: str


def _digest(payload: object) -> str:
    if not isinstance(payload, dict):
        return ""
    for field in DIGEST_FIELDS:
        value = payload.get(field)
        if isinstance(value, str):
            return value.removeprefix("sha256:").strip().lower()
    return ""


def probe(url: str, *, timeout: float) -> Probe:
    """GET the URL once. Healthy means HTTP 2xx and, when the body is JSON with a `status`,
    that status is ok/up/healthy."""
    if urlparse(url).scheme not in {"http", "https"}:
        return Probe(False, None, None, "", "Only http and https health URLs are probed.")
    started = time.monotonic()
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310 - scheme checked above
            body = response.read(65536)
            status_code = response.status
    except urllib.error.HTTPError as error:
        latency = int((time.monotonic() - started) * 1000)
        return Probe(False, latency, error.code, "", f"HTTP {error.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Probe(False, None, None, "", f"No answer: {reason}"[:500])
    latency = int((time.monotonic() - started) * 1000)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    status = str(payload.get("status", "ok")).lower() if isinstance(payload, dict) else "ok"
    healthy = 200 <= status_code < 300 and status in {"ok", "up", "healthy", "pass"}
    detail = "" if healthy else f"Reported status: {status}"
    return Probe(healthy, latency, status_code, _digest(payload), detail)
