"""Issue 15, item 4: the evidence pack of a change request, from its page and the API, verified
offline without seeing any other event's body; edited, trimmed or re-signed packs fail."""

import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from audit import keys
from audit.chain import event_hash, evidence_manifest_message, tree_head_message
from audit.models import AuditEvent, AuditMerkleChunk
from audit.offline_verify import main as offline_verify
from audit.offline_verify import verify_evidence
from releases.builders import release_to_test

pytestmark = pytest.mark.django_db

ROLLBACK = "/api/v1/environments/test/models/fraud-score/rollback/"


@pytest.fixture
def rolled_back(envs, builds, ci, clock, requester, peer, django_clock):
    """1.0 then 1.1 deployed to test through their changes, then 1.1 rolled back."""
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(hours=1)
    )
    second = release_to_test(
        envs, builds["1.1"], ci.account, clock, requester, peer, pause=timedelta(hours=1)
    )
    answer = ci.client().post(ROLLBACK, {"reason": "Scores drifted."}, format="json")
    assert answer.status_code == 201
    return second.change_request


def download(client, change_request) -> bytes:
    response = client.get(f"/api/v1/change-requests/{change_request.number}/evidence/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    return b"".join(response) if response.streaming else response.content


def write(tmp_path, files: dict[str, bytes], name="pack.zip") -> str:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as pack:
        for member, content in files.items():
            pack.writestr(member, content)
    return str(path)


def unpack(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as pack:
        return {name: pack.read(name) for name in pack.namelist()}


def test_the_pack_holds_the_change_and_verifies_offline_alone(
    rolled_back, builds, ci, tmp_path, capsys
):
    files = unpack(download(ci.client(), rolled_back))
    assert set(files) == {
        "evidence.pdf",
        "evidence.json",
        "events.jsonl",
        "head.json",
        "public_key.pem",
    }
    facts = json.loads(files["evidence.json"])
    build = builds["1.1"]
    assert facts["change_request"]["number"] == rolled_back.number
    assert facts["build"]["commit_sha"] == build.commit_sha
    assert facts["build"]["artifact_sha256"] == build.artifact_sha256
    assert [s["meaning"] for s in facts["sign_offs"]] == [
        s.meaning for s in rolled_back.sign_offs.order_by("signed_at", "pk")
    ]
    assert [d["kind"] for d in facts["deployments"]] == ["deploy", "rollback"]
    assert facts["gate_decisions"] and facts["gate_decisions"][0]["allowed"] is True

    reader = PdfReader(io.BytesIO(files["evidence.pdf"]))
    pdf = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for words in (rolled_back.number, build.commit_sha, "Scores drifted", "Sign-offs"):
        assert words in pdf

    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    bodies = [json.loads(event["body"]) for event in events]
    about = {(body["object"]["type"], body["object"]["id"]) for body in bodies}
    deployments = {str(d["id"]) for d in facts["deployments"]}
    assert about <= (
        {("releases.changerequest", str(rolled_back.pk)), ("registry.modelversion", str(build.pk))}
        | {("releases.deployment", pk) for pk in deployments}
    )
    assert ("releases.changerequest", str(rolled_back.pk)) in about
    assert {"releases.deployment"} <= {object_type for object_type, _ in about}
    # Only this change's events: the trail holds many more, and the pack shows none of them.
    assert len(events) < AuditEvent.objects.count()
    assert [e["seq"] for e in events] == facts["events"]

    path = write(tmp_path, files)
    assert verify_evidence(path)[0] is True
    pinned = tmp_path / "key.pem"
    pinned.write_text(keys.public_key_pem())
    assert offline_verify(["--evidence", path, "--public-key", str(pinned)]) == 0
    assert f"evidence pack of {rolled_back.number}: intact" in capsys.readouterr().out


def test_a_pack_edited_or_trimmed_is_refused(rolled_back, ci, tmp_path):
    files = unpack(download(ci.client(), rolled_back))
    lines = files["events.jsonl"].decode().splitlines()

    edited = json.loads(lines[0])
    edited["body"] = edited["body"].replace("fraud", "frauD")
    cases = {
        "an edited event": {"events.jsonl": "\n".join([json.dumps(edited), *lines[1:]]) + "\n"},
        "a dropped event": {"events.jsonl": "\n".join(lines[1:]) + "\n"},
        "edited facts": {"evidence.json": files["evidence.json"].replace(b"Scores", b"Nothing")},
    }
    for label, change in cases.items():
        encoded = {
            name: text if isinstance(text, bytes) else text.encode()
            for name, text in change.items()
        }
        tampered = {**files, **encoded}
        intact, found = verify_evidence(write(tmp_path, tampered, f"{label}.zip"))
        assert not intact, label
        assert "not the file the manifest signed" in found[0], label

    missing = {name: content for name, content in files.items() if name != "head.json"}
    assert verify_evidence(write(tmp_path, missing, "no-head.zip")) == (
        False,
        ["the pack lacks head.json"],
    )


def resign(files: dict[str, bytes], head: dict, sign) -> dict[str, bytes]:
    """What a forger holding a signing key would do: recompute the digests and sign again."""
    digests = {name: hashlib.sha256(files[name]).hexdigest() for name in head["files"]}
    head = {**head, "files": digests}
    head["signature"] = sign(tree_head_message(head["size"], head["tip_hash"], head["root"]))
    head["manifest_signature"] = sign(evidence_manifest_message(digests, head["root"]))
    return {**files, "head.json": json.dumps(head).encode()}


def test_a_pack_re_signed_by_a_forger_fails_against_the_pinned_key(rolled_back, ci, tmp_path):
    files = unpack(download(ci.client(), rolled_back))
    forger = Ed25519PrivateKey.generate()
    forged_pem = forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    lines = files["events.jsonl"].decode().splitlines()
    event = json.loads(lines[0])
    event["body"] = event["body"].replace("fraud", "frauD")
    events = "\n".join([json.dumps(event), *lines[1:]]).encode() + b"\n"
    forged = {**files, "public_key.pem": forged_pem, "events.jsonl": events}
    forged = resign(forged, json.loads(files["head.json"]), lambda m: forger.sign(m).hex())
    path = write(tmp_path, forged)
    intact, found = verify_evidence(path)
    assert not intact and "its hash does not match its contents" in found[0]

    event["hash"] = event_hash(
        event["prev_hash"], event["seq"], event["occurred_at"], event["body"]
    )
    forged["events.jsonl"] = "\n".join([json.dumps(event), *lines[1:]]).encode() + b"\n"
    forged = resign(forged, json.loads(files["head.json"]), lambda m: forger.sign(m).hex())
    intact, found = verify_evidence(write(tmp_path, forged, "rehashed.zip"))
    assert not intact and "inclusion proof does not lead to the signed root" in found[0]

    honest_key = keys.public_key_pem()
    intact, found = verify_evidence(write(tmp_path, forged, "pinned.zip"), honest_key)
    assert not intact and found == ["the pack was signed with another key than the one pinned"]


def test_the_page_offers_the_pack_and_tokens_need_audit_read(
    rolled_back, login, requester, service_caller
):
    client = login(requester)
    page = client.get(f"/releases/change-requests/{rolled_back.number}/").content.decode()
    assert 'data-testid="evidence-pack"' in page
    response = client.get(f"/releases/change-requests/{rolled_back.number}/evidence.zip")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'{rolled_back.number}-evidence.zip"')
    assert set(unpack(response.content)) >= {"evidence.pdf", "head.json"}

    url = f"/api/v1/change-requests/{rolled_back.number}/evidence/"
    assert service_caller("gate:read").client().get(url).status_code == 403
    assert service_caller("audit:read").client().get(url).status_code == 200
    assert (
        service_caller("audit:read")
        .client()
        .get("/api/v1/change-requests/CR-999999/evidence/")
        .status_code
        == 404
    )


def test_proofs_from_small_chunks_and_a_wrong_stored_chunk_still_verify(
    rolled_back, ci, tmp_path, monkeypatch
):
    """Chunks of four events, so the pack's proofs cross many stored chunk roots; a stored root
    that is wrong (it is not evidence) is computed again from the events, never signed."""
    monkeypatch.setattr("audit.services.CHUNK_BITS", 2)
    first = unpack(download(ci.client(), rolled_back))
    assert verify_evidence(write(tmp_path, first, "first.zip"))[0] is True
    assert AuditMerkleChunk.objects.count() == AuditEvent.objects.count() // 4
    AuditMerkleChunk.objects.filter(index=0).update(root="0" * 64)
    again = unpack(download(ci.client(), rolled_back))
    assert verify_evidence(write(tmp_path, again, "again.zip"))[0] is True
    assert AuditMerkleChunk.objects.get(index=0).root != "0" * 64
