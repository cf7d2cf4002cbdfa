"""Reading a build's artifact where it lives, so the registered digest is compared with the
store instead of taken on CI's word (DESIGN.md rule 14, issue 20).

One reader per URI scheme: `s3://bucket/key` (the object's SHA-256 checksum, or the `sha256`
metadata the pipeline wrote), Artifactory (`artifactory://repo/path`, or an http(s) URL under
`GATEHOUSE_ARTIFACTORY_URL`: the storage API's `checksums.sha256`), `file://` (hashed, only under
`GATEHOUSE_ARTIFACT_FILE_ROOTS`), other http(s) URLs (streamed and hashed) and MLflow's own
artifact URIs (`mlflow-artifacts:`, `runs:`, `models:`: downloaded through the tracking server at
`GATEHOUSE_MLFLOW_TRACKING_URI` and hashed, see `mlflow_artifact_sha256`). Only the stores
named in `GATEHOUSE_ARTIFACT_STORES` are read; credentials come from the environment, never the
database. A store that cannot answer makes the result "unverified", never "verified".

These functions only read; `registry.services` records what they found.
"""

import base64
import binascii
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import requests
from django.conf import settings

from registry.models import ArtifactOutcome

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactReading:
    """What one look at the store found: the digest it holds (empty when it could not say),
    which reader looked, and why it could not say."""

    outcome: str
    store: str
    observed_sha256: str = ""
    detail: str = ""


class Unreadable(Exception):
    """The store did not answer with a digest; the message says why, for the record."""


def _hash_stream(chunks: Iterable[bytes]) -> str:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > settings.GATEHOUSE_ARTIFACT_MAX_BYTES:
            raise Unreadable(
                f"the artifact is larger than GATEHOUSE_ARTIFACT_MAX_BYTES "
                f"({settings.GATEHOUSE_ARTIFACT_MAX_BYTES} bytes), so it is not hashed"
            )
        digest.update(chunk)
    return digest.hexdigest()


def _sha256_from_checksum(value: str) -> str:
    """S3's ChecksumSHA256 is base64; a multipart upload's (`…-N`) is a checksum of the parts'
    checksums, which no single-file digest can match."""
    if not value or "-" in value:
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == 32 else ""


def read_s3(uri: str) -> str:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(uri)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    if not bucket or not key:
        raise Unreadable("an s3:// URI names a bucket and a key")
    timeout = settings.GATEHOUSE_ARTIFACT_TIMEOUT
    client = boto3.client(
        "s3",
        endpoint_url=settings.GATEHOUSE_S3_ENDPOINT_URL or None,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except (BotoCoreError, ClientError) as error:
        raise Unreadable(f"S3 did not answer for {uri}: {error}") from error
    checksum = _sha256_from_checksum(head.get("ChecksumSHA256", ""))
    if checksum:
        return checksum
    written = (head.get("Metadata") or {}).get("sha256", "").lower()
    if SHA256_HEX.match(written):
        return written
    raise Unreadable(
        f"{uri} carries no SHA-256 checksum and no x-amz-meta-sha256; upload it with "
        "--checksum-algorithm SHA256 or write the metadata"
    )


def _artifactory_path(uri: str) -> str:
    """`repo/path` of an Artifactory URI, or "" when the URI is not one."""
    if uri.startswith("artifactory://"):
        return uri.removeprefix("artifactory://")
    base = settings.GATEHOUSE_ARTIFACTORY_URL
    if base and uri.startswith(base + "/"):
        return uri.removeprefix(base + "/")
    return ""


def _http_headers() -> dict[str, str]:
    token = os.environ.get("GATEHOUSE_ARTIFACTORY_TOKEN", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def read_artifactory(uri: str) -> str:
    base = settings.GATEHOUSE_ARTIFACTORY_URL
    if not base:
        raise Unreadable("GATEHOUSE_ARTIFACTORY_URL is not set")
    path = _artifactory_path(uri).lstrip("/")
    url = f"{base}/api/storage/{quote(unquote(path))}"
    try:
        response = requests.get(
            url, headers=_http_headers(), timeout=settings.GATEHOUSE_ARTIFACT_TIMEOUT
        )
        response.raise_for_status()
        checksum = str(response.json().get("checksums", {}).get("sha256", "")).lower()
    except (requests.RequestException, ValueError, AttributeError) as error:
        raise Unreadable(f"Artifactory did not answer for {path}: {error}") from error
    if not SHA256_HEX.match(checksum):
        raise Unreadable(f"Artifactory holds no sha256 checksum for {path}")
    return checksum


def read_file(uri: str) -> str:
    path = Path(unquote(urlsplit(uri).path)).resolve()
    roots = [Path(root).resolve() for root in settings.GATEHOUSE_ARTIFACT_FILE_ROOTS]
    if not any(path.is_relative_to(root) for root in roots):
        raise Unreadable(f"{path} is not under GATEHOUSE_ARTIFACT_FILE_ROOTS")
    try:
        return _file_sha256(path)
    except OSError as error:
        raise Unreadable(f"{path} cannot be read: {error.strerror}") from error


def read_http(uri: str) -> str:
    try:
        with requests.get(
            uri, stream=True, timeout=settings.GATEHOUSE_ARTIFACT_TIMEOUT, allow_redirects=False
        ) as response:
            response.raise_for_status()
            return _hash_stream(response.iter_content(CHUNK))
    except requests.RequestException as error:
        raise Unreadable(f"{uri} did not answer: {error}") from error


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return _hash_stream(iter(lambda: handle.read(CHUNK), b""))


def tree_sha256(root: Path) -> str:
    """The digest of an artifact that is a directory (an MLflow model is one): the sha256 of the
    `sha256sum` lines of its files, `<sha256>  <path relative to root>`, sorted by path; a
    single file's digest is its own sha256. docs/operations.md ("MLflow") shows the shell line a
    pipeline computes the same with."""
    if root.is_file():
        return _file_sha256(root)
    files = sorted(path for path in root.rglob("*") if path.is_file())
    total = sum(path.stat().st_size for path in files)
    if total > settings.GATEHOUSE_ARTIFACT_MAX_BYTES:
        raise Unreadable(
            f"the artifact is larger than GATEHOUSE_ARTIFACT_MAX_BYTES "
            f"({settings.GATEHOUSE_ARTIFACT_MAX_BYTES} bytes), so it is not hashed"
        )
    lines = "".join(
        f"{_file_sha256(path)}  {path.relative_to(root).as_posix()}\n" for path in files
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def mlflow_artifact_sha256(uri: str, *, tracking_uri: str) -> str:
    """Download the artifact at `uri` through MLflow's artifact API (the tracking server's
    proxy, or the store it names with the client's own credentials) and hash it with
    `tree_sha256`."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    if not tracking_uri:
        raise Unreadable("GATEHOUSE_MLFLOW_TRACKING_URI is not set")
    with tempfile.TemporaryDirectory(prefix="gatehouse-mlflow-") as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=scratch, tracking_uri=tracking_uri
            )
        except (MlflowException, OSError, requests.RequestException) as error:
            raise Unreadable(f"MLflow did not hand over {uri}: {error}") from error
        return tree_sha256(Path(local))


def read_mlflow(uri: str) -> str:
    return mlflow_artifact_sha256(uri, tracking_uri=settings.GATEHOUSE_MLFLOW_TRACKING_URI)


MLFLOW_SCHEMES = {"mlflow-artifacts", "runs", "models"}


def _store(uri: str) -> tuple[str, Callable[[str], str] | None]:
    scheme = urlsplit(uri).scheme.lower()
    if _artifactory_path(uri):
        return "artifactory", read_artifactory
    if scheme in MLFLOW_SCHEMES:
        return "mlflow", read_mlflow
    readers = {"s3": read_s3, "file": read_file, "http": read_http, "https": read_http}
    # A URI without a scheme (a bare path, a name) is in no store the portal can read.
    store = ("http" if scheme == "https" else scheme) or "none"
    return store, readers.get(scheme)


def artifact_store_connected(uri: str) -> bool:
    store, reader = _store(uri)
    return reader is not None and store in settings.GATEHOUSE_ARTIFACT_STORES


def artifact_read(uri: str, *, expected_sha256: str) -> ArtifactReading:
    """Compare `expected_sha256` with what the store of `uri` holds. Never raises for a store
    that cannot answer: that is an `unverified` reading with the reason."""
    store, reader = _store(uri)
    if reader is None:
        return ArtifactReading(
            ArtifactOutcome.UNVERIFIED, store, detail=f"no reader for '{store}' URIs"
        )
    if store not in settings.GATEHOUSE_ARTIFACT_STORES:
        return ArtifactReading(
            ArtifactOutcome.UNVERIFIED,
            store,
            detail=f"the '{store}' store is not connected (GATEHOUSE_ARTIFACT_STORES)",
        )
    try:
        observed = reader(uri)
    except Unreadable as unreadable:
        return ArtifactReading(ArtifactOutcome.UNVERIFIED, store, detail=str(unreadable)[:500])
    outcome = ArtifactOutcome.VERIFIED if observed == expected_sha256 else ArtifactOutcome.MISMATCH
    return ArtifactReading(outcome, store, observed_sha256=observed)
