"""Issue 20: a registered build's digest is compared with what its store holds. A store holding
another digest refuses the registration (409 `artifact_digest_mismatch`); a store that cannot
answer leaves the version recorded "unverified" with the reason, never "verified"."""

import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actions import AuditAction
from audit.models import AuditEvent
from portal.exceptions import Conflict
from registry.models import ArtifactCheckPurpose, ArtifactOutcome, ModelVersion
from tests.artifact_stores import ARTIFACTORY_TOKEN, free_port
from tests.registry import helpers

BODY = b"credit-scoring 1.0.0 model.pkl"
DIGEST = hashlib.sha256(BODY).hexdigest()
OTHER = hashlib.sha256(b"a model someone swapped in").hexdigest()

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(dataset, model):
    return model


def register(**overrides) -> ModelVersion:
    return helpers.register_version(**{"artifact_sha256": DIGEST, **overrides})


def test_an_s3_object_with_the_registered_checksum_is_verified(ready, s3_store):
    uri = s3_store.put("credit-scoring/1.0.0/model.pkl", BODY)
    version = register(artifact_uri=uri, artifact_sha256=DIGEST)

    check = version.latest_artifact_check
    assert (check.outcome, check.store, check.observed_sha256) == ("verified", "s3", DIGEST)
    assert check.purpose == ArtifactCheckPurpose.REGISTRATION
    event = AuditEvent.objects.filter(action=AuditAction.MODEL_VERSION_REGISTERED).last()
    assert event.data["artifact_check"]["outcome"] == "verified"


def test_an_s3_object_with_another_checksum_refuses_the_registration(ready, s3_store):
    uri = s3_store.put("credit-scoring/1.0.0/model.pkl", b"a model someone swapped in")

    with pytest.raises(Conflict) as refused:
        register(artifact_uri=uri, artifact_sha256=DIGEST)

    assert refused.value.code == "artifact_digest_mismatch"
    assert OTHER in refused.value.detail
    assert not ModelVersion.objects.exists()


def test_the_pipelines_sha256_metadata_counts_where_s3_kept_no_checksum(ready, s3_store):
    good = s3_store.put("m/good.pkl", BODY, checksum=False, metadata_sha256=DIGEST)
    assert register(artifact_uri=good).latest_artifact_check.outcome == "verified"

    bad = s3_store.put("m/bad.pkl", BODY, checksum=False, metadata_sha256=OTHER)
    with pytest.raises(Conflict, match="artifact is not the build"):
        register(version="1.0.1", build_id="4712", artifact_uri=bad, artifact_sha256=DIGEST)


def test_an_s3_object_with_no_digest_at_all_is_unverified_not_verified(ready, s3_store):
    uri = s3_store.put("m/bare.pkl", BODY, checksum=False)
    check = register(artifact_uri=uri, artifact_sha256=DIGEST).latest_artifact_check
    assert check.outcome == ArtifactOutcome.UNVERIFIED
    assert "x-amz-meta-sha256" in check.detail


def test_a_missing_s3_object_is_unverified(ready, s3_store):
    check = register(artifact_uri="s3://bank-ml-models/nothing/here.pkl").latest_artifact_check
    assert check.outcome == ArtifactOutcome.UNVERIFIED
    assert "S3 did not answer" in check.detail


def test_the_api_refuses_a_mismatch_with_409(ready, s3_store, ci):
    uri = s3_store.put("credit-scoring/1.0.0/model.pkl", b"a model someone swapped in")
    response = ci.client().post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(artifact_uri=uri, artifact_sha256=DIGEST),
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "artifact_digest_mismatch"

    s3_store.put("credit-scoring/1.0.0/model.pkl", BODY)
    accepted = ci.client().post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(artifact_uri=uri, artifact_sha256=DIGEST),
        format="json",
    )
    assert accepted.status_code == 201
    assert accepted.json()["artifact_check"]["outcome"] == "verified"


def test_artifactory_storage_api_checksum_matching_and_not(ready, artifactory):
    uri = artifactory.put("ml-release-local/credit-scoring/1.0.0/model.pkl", DIGEST)
    version = register(artifact_uri=uri, artifact_sha256=DIGEST)
    assert version.latest_artifact_check.outcome == "verified"
    # The token comes from the environment; nothing of it is stored.
    assert artifactory.authorisations[-1] == f"Bearer {ARTIFACTORY_TOKEN}"
    assert ARTIFACTORY_TOKEN not in str(version.latest_artifact_check.__dict__)

    swapped = artifactory.put("ml-release-local/credit-scoring/1.0.1/model.pkl", OTHER)
    with pytest.raises(Conflict) as refused:
        register(version="1.0.1", build_id="4712", artifact_uri=swapped, artifact_sha256=DIGEST)
    assert refused.value.code == "artifact_digest_mismatch"


def test_artifactory_uris_by_scheme_read_the_same_api(ready, artifactory):
    artifactory.put("ml-release-local/m/model.pkl", DIGEST)
    uri = "artifactory://ml-release-local/m/model.pkl"
    assert register(artifact_uri=uri).latest_artifact_check.outcome == "verified"


def test_artifactory_with_a_wrong_token_is_unverified(ready, artifactory, monkeypatch):
    monkeypatch.setenv("GATEHOUSE_ARTIFACTORY_TOKEN", "guessed")
    uri = artifactory.put("ml-release-local/m/model.pkl", OTHER)
    check = register(artifact_uri=uri, artifact_sha256=DIGEST).latest_artifact_check
    assert check.outcome == ArtifactOutcome.UNVERIFIED
    assert "401" in check.detail


def test_an_unreachable_store_records_the_version_unverified(ready, settings):
    settings.GATEHOUSE_ARTIFACTORY_URL = f"http://127.0.0.1:{free_port()}/artifactory"
    settings.GATEHOUSE_ARTIFACT_STORES = ["artifactory"]
    settings.GATEHOUSE_ARTIFACT_TIMEOUT = 2
    uri = f"{settings.GATEHOUSE_ARTIFACTORY_URL}/ml-release-local/m/model.pkl"
    version = register(artifact_uri=uri, artifact_sha256=DIGEST)
    check = version.latest_artifact_check
    assert (check.outcome, check.store, check.observed_sha256) == ("unverified", "artifactory", "")
    assert "Artifactory did not answer" in check.detail


def test_a_store_not_connected_is_unverified_and_not_read(ready, settings):
    settings.GATEHOUSE_ARTIFACT_STORES = []
    check = register().latest_artifact_check
    assert check.outcome == ArtifactOutcome.UNVERIFIED
    assert "not connected" in check.detail


def test_a_file_is_hashed_only_under_the_allowed_roots(ready, settings, tmp_path):
    allowed, elsewhere = tmp_path / "models", tmp_path / "secrets"
    allowed.mkdir()
    elsewhere.mkdir()
    (allowed / "model.pkl").write_bytes(BODY)
    (elsewhere / "key.pem").write_bytes(BODY)
    settings.GATEHOUSE_ARTIFACT_STORES = ["file"]
    settings.GATEHOUSE_ARTIFACT_FILE_ROOTS = [str(allowed)]

    inside = register(artifact_uri=f"file://{allowed}/model.pkl").latest_artifact_check
    assert inside.outcome == "verified"
    # ../ out of the root is resolved before the root is compared.
    sidestep = register(
        version="1.0.1",
        build_id="4712",
        artifact_uri=f"file://{allowed}/../secrets/key.pem",
        artifact_sha256=OTHER,
    ).latest_artifact_check
    assert sidestep.outcome == ArtifactOutcome.UNVERIFIED
    assert "GATEHOUSE_ARTIFACT_FILE_ROOTS" in sidestep.detail


def test_a_file_larger_than_the_limit_is_not_hashed(ready, settings, tmp_path):
    (tmp_path / "model.pkl").write_bytes(BODY)
    settings.GATEHOUSE_ARTIFACT_STORES = ["file"]
    settings.GATEHOUSE_ARTIFACT_FILE_ROOTS = [str(tmp_path)]
    settings.GATEHOUSE_ARTIFACT_MAX_BYTES = 10
    check = register(artifact_uri=f"file://{tmp_path}/model.pkl").latest_artifact_check
    assert check.outcome == ArtifactOutcome.UNVERIFIED
    assert "GATEHOUSE_ARTIFACT_MAX_BYTES" in check.detail


@pytest.fixture
def web_server(tmp_path):
    """A plain web server over `tmp_path`."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_http_artifact_is_streamed_and_hashed(ready, settings, tmp_path, web_server):
    settings.GATEHOUSE_ARTIFACT_STORES = ["http"]
    (tmp_path / "model.pkl").write_bytes(BODY)
    (tmp_path / "swapped.pkl").write_bytes(b"a model someone swapped in")

    assert register(artifact_uri=f"{web_server}/model.pkl").latest_artifact_check.outcome == (
        "verified"
    )
    with pytest.raises(Conflict) as refused:
        register(version="1.0.1", build_id="4712", artifact_uri=f"{web_server}/swapped.pkl")
    assert refused.value.code == "artifact_digest_mismatch"
    gone = register(
        version="1.0.2",
        build_id="4713",
        artifact_uri=f"{web_server}/gone.pkl",
        artifact_sha256=OTHER,
    )
    assert gone.latest_artifact_check.outcome == ArtifactOutcome.UNVERIFIED


def test_the_version_list_reads_every_versions_check_in_one_query(ready, ci, settings):
    settings.GATEHOUSE_ARTIFACT_STORES = []
    client = ci.client()
    url = "/api/v1/models/credit-scoring/versions/"
    register()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(url).json()
        assert {version["artifact_check"]["outcome"] for version in answer} == {"unverified"}
        return len(captured)

    one = queries()
    for number in (1, 2):
        register(version=f"1.0.{number}", build_id=f"48{number}", artifact_sha256=f"{number}" * 64)
    assert queries() == one
