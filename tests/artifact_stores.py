"""Stand-ins for the stores artifacts live in, spoken to by the real reader code
(registry/artifacts.py): moto's S3 server on a free port, and an Artifactory that answers the
storage API (`GET /api/storage/<repo>/<path>`) from a dict and wants a bearer token."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ARTIFACTORY_TOKEN = "artifactory-read-token"
S3_BUCKET = "bank-ml-models"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Store:
    def __init__(self, endpoint: str):
        import boto3

        self.endpoint = endpoint
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.client.create_bucket(Bucket=S3_BUCKET)

    def put(self, key: str, body: bytes, *, checksum: bool = True, metadata_sha256: str = ""):
        """Upload as a pipeline would: with S3's own SHA-256 checksum, or only the hex digest
        in `x-amz-meta-sha256`. Returns the object's s3:// URI."""
        extra: dict = {}
        if checksum:
            extra["ChecksumAlgorithm"] = "SHA256"
        if metadata_sha256:
            extra["Metadata"] = {"sha256": metadata_sha256}
        self.client.put_object(Bucket=S3_BUCKET, Key=key, Body=body, **extra)
        return f"s3://{S3_BUCKET}/{key}"


@pytest.fixture
def s3_store(settings, monkeypatch):
    """moto's S3 in server mode, connected as an operator would connect a bank's S3-compatible
    store: the endpoint by setting, the read-only key by the environment."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    endpoint = f"http://127.0.0.1:{port}"
    settings.GATEHOUSE_S3_ENDPOINT_URL = endpoint
    settings.GATEHOUSE_ARTIFACT_STORES = [*settings.GATEHOUSE_ARTIFACT_STORES, "s3"]
    try:
        yield S3Store(endpoint)
    finally:
        server.stop()


class Artifactory:
    def __init__(self, url: str):
        self.url = url
        self.checksums: dict[str, str] = {}
        self.authorisations: list[str] = []

    def put(self, path: str, sha256: str) -> str:
        """`path` is `<repo>/<path>`; returns the artifact's download URL."""
        self.checksums[path] = sha256
        return f"{self.url}/{path}"


@pytest.fixture
def artifactory(settings, monkeypatch):
    port = free_port()
    store = Artifactory(f"http://127.0.0.1:{port}/artifactory")

    class StorageApi(BaseHTTPRequestHandler):
        def do_GET(self):
            store.authorisations.append(self.headers.get("Authorization", ""))
            prefix = "/artifactory/api/storage/"
            path = self.path.removeprefix(prefix)
            if not self.path.startswith(prefix) or path not in store.checksums:
                self.send_response(404)
                self.end_headers()
                return
            if self.headers.get("Authorization") != f"Bearer {ARTIFACTORY_TOKEN}":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps(
                {"path": "/" + path, "checksums": {"sha256": store.checksums[path]}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), StorageApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GATEHOUSE_ARTIFACTORY_TOKEN", ARTIFACTORY_TOKEN)
    settings.GATEHOUSE_ARTIFACTORY_URL = store.url
    settings.GATEHOUSE_ARTIFACT_STORES = [*settings.GATEHOUSE_ARTIFACT_STORES, "artifactory"]
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
