"""Issue 15, items 1-3, tried as an attacker would: exports trimmed, cut short or made up, the
newest events deleted with their checkpoint, a chain rebuilt by someone who holds both the
database and the signing key, and the auditor's own web download, which must verify offline."""

import http.server
import json
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit import keys
from audit.actions import AuditAction
from audit.chain import event_hash
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_create, audit_verify, chain_event
from tests.audit.test_export import offline_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(record_events, tmp_path):
    record_events(4)
    audit_checkpoint_create(actor=None)
    record_events(3)
    path = tmp_path / "trail.jsonl"
    call_command("audit_export", out=str(path), stdout=StringIO())
    return path


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    """Write the records back with a trailer whose counts fit them, as a forger would."""
    body = [record for record in records if record["type"] != "end"]
    end = next((record for record in records if record["type"] == "end"), {"type": "end"})
    end = {
        **end,
        "events": sum(record["type"] == "event" for record in body),
        "checkpoints": sum(record["type"] == "checkpoint" for record in body),
    }
    lines = [json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in body]
    path.write_text("\n".join([*lines, json.dumps(end, separators=(",", ":"))]) + "\n")


def _verify_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_an_export_without_its_checkpoint_lines_fails(export):
    records = [r for r in _records(export) if r["type"] not in ("checkpoint", "head")]
    _write(export, records)
    result = offline_verify(export)
    assert result.returncode == 1, result.stdout
    assert "signed head" in result.stdout


def test_an_export_cut_short_fails_naming_the_cut(export):
    records = _records(export)
    kept = records[:4]  # the header and three events: before any checkpoint
    _write(export, kept)
    result = offline_verify(export)
    assert result.returncode == 1, result.stdout
    assert "events 1..3 are not covered by a signed head" in result.stdout


def test_an_export_cut_short_after_a_checkpoint_fails(export):
    records = _records(export)
    checkpoint_at = next(n for n, r in enumerate(records) if r["type"] == "checkpoint")
    _write(export, records[: checkpoint_at + 2])
    result = offline_verify(export)
    assert result.returncode == 1, result.stdout


def test_the_unsigned_tail_passes_only_when_asked_and_loudly(export):
    records = _records(export)
    checkpoint_at = next(n for n, r in enumerate(records) if r["type"] == "checkpoint")
    _write(export, [r for r in records[: checkpoint_at + 3] if r["type"] != "head"])
    assert offline_verify(export).returncode == 1
    result = offline_verify(export, "--allow-unsigned-tail")
    assert result.returncode == 0, result.stdout
    assert "WARNING" in result.stdout
    assert "events 5..6 are not covered by a signed head" in result.stdout


def test_a_made_up_partial_export_with_a_forged_event_fails(export, tmp_path):
    records = _records(export)
    header = records[0]
    forged, prev_hash = [], "ab" * 32
    for seq in (3, 4, 5):
        stamp = f"2026-01-0{seq}T00:00:00.000000Z"
        body = json.dumps(
            {"action": "change_request.signed", "occurred_at": stamp, "seq": seq},
            separators=(",", ":"),
        )
        hash_ = event_hash(prev_hash, seq, stamp, body)
        forged.append(
            {"type": "event", "seq": seq, "occurred_at": stamp, "prev_hash": prev_hash,
             "hash": hash_, "body": body}
        )  # fmt: skip
        prev_hash = hash_
    # The forger borrows whatever signed lines the genuine export carries.
    signed = [r for r in records if r["type"] == "head"]
    fake = tmp_path / "made-up.jsonl"
    _write(fake, [header, *forged, *signed, *[r for r in records if r["type"] == "end"]])
    result = offline_verify(fake)
    assert result.returncode == 1, result.stdout


def test_deleting_the_newest_events_with_their_checkpoint_is_named_a_truncation(
    record_events, tamper
):
    events = record_events(5)
    audit_checkpoint_create(actor=None)
    run, _report = audit_verify(actor=None)
    assert run.ok and run.tip_seq == events[-1].seq
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq >= %s", [events[3].seq])
        cursor.execute("DELETE FROM audit_auditcheckpoint")
    status, output = _verify_command()
    assert status == 1, output
    assert "truncated" in output
    assert f"verification run #{run.pk}" in output
    assert f"first bad event: {events[3].seq}" in output


def _rebuild_without(seq: int, cursor) -> None:
    """What someone holding the database and the signing key can do: drop an event, renumber
    and rehash everything after it with the portal's own code, and sign the result afresh."""
    columns = [
        "occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object_type",
        "object_id", "object_repr", "environment", "data", "request_id", "ip", "user_agent",
    ]  # fmt: skip
    later = list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values(*columns))
    cursor.execute("DELETE FROM audit_auditcheckpoint")
    cursor.execute("DELETE FROM audit_auditevent WHERE seq >= %s", [seq])
    prev_hash = AuditEvent.objects.get(seq=seq - 1).hash
    for new_seq, row in enumerate(later, start=seq):
        event = chain_event(seq=new_seq, prev_hash=prev_hash, **row)
        event.save(force_insert=True)
        prev_hash = event.hash


def test_the_witness_catches_a_chain_rebuilt_with_the_signing_key(
    record_events, tamper, settings, tmp_path, django_capture_on_commit_callbacks
):
    witness = tmp_path / "witness"
    settings.AUDIT_WITNESS_DIR = witness
    record_events(4)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit_checkpoint_create(actor=None)
    assert len(list(witness.iterdir())) == 1
    record_events(3)
    with tamper() as cursor:
        _rebuild_without(2, cursor)
    audit_checkpoint_create(actor=None)
    assert AuditEvent.objects.count() == 6
    status, output = _verify_command()
    assert status == 0, output  # the database alone cannot tell
    status, output = _verify_command("--witness", str(witness))
    assert status == 1, output
    assert f"witnessed checkpoint at {checkpoint.size}" in output


def test_the_witness_agrees_with_an_intact_chain(
    record_events, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.AUDIT_WITNESS_DIR = tmp_path / "witness"
    record_events(3)
    with django_capture_on_commit_callbacks(execute=True):
        audit_checkpoint_create(actor=None)
    record_events(2)
    with django_capture_on_commit_callbacks(execute=True):
        audit_checkpoint_create(actor=None)
    status, output = _verify_command("--witness", str(tmp_path / "witness"))
    assert status == 0, output
    assert "2 witnessed heads agree" in output


def test_a_checkpoint_is_posted_to_the_witness_url(
    record_events, settings, tmp_path, django_capture_on_commit_callbacks
):
    received: list[dict] = []

    class Witness(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.AUDIT_WITNESS_DIR = tmp_path / "witness"
        settings.AUDIT_WITNESS_URL = f"http://127.0.0.1:{server.server_port}/heads"
        record_events(3)
        with django_capture_on_commit_callbacks(execute=True):
            checkpoint = audit_checkpoint_create(actor=None)
    finally:
        server.shutdown()
        thread.join()
    assert len(received) == 1
    head = received[0]
    assert head["size"] == checkpoint.size
    assert head["root"] == checkpoint.merkle_root
    assert head["signature"] == checkpoint.signature


def test_the_web_jsonl_download_verifies_offline(login, auditor, record_events, tmp_path):
    record_events(3, action=AuditAction.CHANGE_REQUEST_SIGNED)
    audit_checkpoint_create(actor=None)
    record_events(2)
    response = login(auditor).get(reverse("audit:export-jsonl"))
    assert response.status_code == 200
    path = tmp_path / "download.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    key = tmp_path / "public.pem"
    key.write_text(keys.public_key_pem())
    result = offline_verify(path, "--public-key", str(key))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("intact")


def test_a_partial_web_download_verifies_and_says_which_part(
    login, auditor, record_events, tmp_path
):
    record_events(3)
    audit_checkpoint_create(actor=None)
    later = record_events(3)
    record_events(2)
    response = login(auditor).get(
        reverse("audit:export-jsonl"),
        {"since": later[0].occurred_at.isoformat(), "until": later[-1].occurred_at.isoformat()},
    )
    path = tmp_path / "part.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    result = offline_verify(path)
    assert result.returncode == 0, result.stdout
    total = AuditEvent.objects.count()
    assert f"partial: seq {later[0].seq}..{later[-1].seq} of {total}" in result.stdout


def test_the_api_export_verifies_offline(service_caller, record_events, tmp_path):
    record_events(4)
    response = service_caller("audit:read").client().get("/api/v1/audit/export/")
    assert response.status_code == 200
    path = tmp_path / "api.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    result = offline_verify(path)
    assert result.returncode == 0, result.stdout


def test_a_rotated_key_keeps_old_checkpoints_verifying(
    record_events, settings, tmp_path, client, service_caller, django_capture_on_commit_callbacks
):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "signing.pem"
    record_events(3)
    old = audit_checkpoint_create(actor=None)
    old_pem = keys.public_key_pem()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("audit_rotate_key", stdout=StringIO())
    assert keys.current_key_id() != old.key_id
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_SIGNING_KEY_ROTATED).exists()
    record_events(2)
    new = audit_checkpoint_create(actor=None)
    assert new.key_id == keys.current_key_id()
    run, report = audit_verify(actor=None)
    assert run.ok, report.problem
    assert report.checkpoints == 2
    page = client.get(reverse("audit:public-key")).content.decode()
    assert old.key_id in page and new.key_id in page
    served = service_caller("audit:read").client().get("/api/v1/audit/verify/").json()["keys"]
    assert [(key["key_id"], key["current"]) for key in served] == [
        (new.key_id, True),
        (old.key_id, False),
    ]
    export = tmp_path / "after-rotation.jsonl"
    call_command("audit_export", out=str(export), stdout=StringIO())
    pinned_old = tmp_path / "old.pem"
    pinned_old.write_text(old_pem)
    result = offline_verify(export, "--public-key", str(pinned_old))
    assert result.returncode == 0, result.stdout
    assert AuditCheckpoint.objects.filter(key_id=old.key_id).exists()
