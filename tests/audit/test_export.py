"""An export verifies offline, in a separate process without Django; one changed byte fails it at
the line that holds the byte."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from audit import keys
from audit.services import audit_checkpoint_create

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)


def offline_verify(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit.offline_verify", str(path), *extra],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def export(record_events, tmp_path):
    record_events(4)
    audit_checkpoint_create(actor=None)
    record_events(2)
    path = tmp_path / "trail.jsonl"
    call_command("audit_export", out=str(path), stdout=open("/dev/null", "w"))  # noqa: SIM115
    return path


def test_the_verifier_imports_no_django():
    probe = (
        "import sys, audit.offline_verify, audit.chain, audit; "
        "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_an_export_verifies_offline(export, tmp_path):
    lines = export.read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds[0] == "header" and kinds[-1] == "end"
    assert "checkpoint" in kinds
    assert json.loads(lines[0])["public_key"] == keys.public_key_pem()

    result = offline_verify(export)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("intact")

    key = tmp_path / "public.pem"
    key.write_text(keys.public_key_pem())
    assert offline_verify(export, "--public-key", str(key)).returncode == 0


def _flip_byte(path: Path, line_number: int, needle: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    position = lines[line_number - 1].index(needle) + len(needle)
    line = bytearray(lines[line_number - 1])
    line[position] ^= 0x01
    lines[line_number - 1] = bytes(line)
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(
    ("pick", "needle"),
    [
        ("middle event", b'\\"number\\":'),
        ("last event", b'"hash":"'),
        ("checkpoint", b'"signature":"'),
    ],
)
def test_one_changed_byte_fails_at_its_line(export, pick, needle):
    lines = export.read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["type"] for line in lines]
    events = [n for n, kind in enumerate(kinds, start=1) if kind == "event"]
    target = {
        "middle event": events[len(events) // 2],
        "last event": events[-1],
        "checkpoint": kinds.index("checkpoint") + 1,
    }[pick]
    # Change the byte just after the needle: a digit of the number, a hex digit of a hash.
    _flip_byte(export, target, needle)
    content = export.read_bytes().split(b"\n")[target - 1]
    assert needle in content
    result = offline_verify(export)
    assert result.returncode == 1, result.stdout
    assert result.stdout.strip().splitlines()[-1] == f"first bad line: {target}"


def test_a_cut_off_export_fails_at_its_first_unsigned_event(export):
    lines = export.read_text(encoding="utf-8").splitlines()
    export.write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
    result = offline_verify(export)
    assert result.returncode == 1
    first_after_checkpoint = [json.loads(line)["type"] for line in lines].index("checkpoint") + 2
    assert result.stdout.strip().splitlines()[-1] == f"first bad line: {first_after_checkpoint}"


def test_a_key_other_than_the_trusted_one_fails_at_the_header(export, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = offline_verify(export, "--public-key", str(other))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "first bad line: 1"


def test_a_time_range_exports_a_contiguous_verifiable_run(record_events, tmp_path):
    first = record_events(3)
    later = record_events(3)
    path = tmp_path / "range.jsonl"
    call_command(
        "audit_export",
        "--out",
        str(path),
        "--since",
        later[0].occurred_at.isoformat(),
        stdout=open("/dev/null", "w"),  # noqa: SIM115
    )
    seqs = [
        json.loads(line)["seq"]
        for line in path.read_text().splitlines()
        if json.loads(line)["type"] == "event"
    ]
    assert seqs[0] == later[0].seq > first[-1].seq
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    result = offline_verify(path)
    assert result.returncode == 0, result.stdout
    assert f"partial: seq {seqs[0]}..{seqs[-1]} of {seqs[-1]}" in result.stdout
