"""Verify an audit export on any machine: `python -m audit.offline_verify FILE`.

Needs only the standard library, `audit.chain` and `cryptography`; never Django, so an external
auditor can run it against the file alone. It checks the file line by line: the header's public
key, every event's link, hash and sequence number, every signed checkpoint against the events
before it, and the trailer's counts (a cut-off file fails). Exit status 0 when intact, 1 when not,
and then the last line is `first bad line: N`.

Pass `--public-key FILE` with the key published by the portal (`/audit/public-key.pem`): otherwise
the verifier trusts the key inside the export, which a forger could have replaced with their own.
"""

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import ChainWalk, checkpoint_message

EXPORT_FORMAT = "gatehouse-audit-export/v1"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 over the raw public key; the portal names keys the same."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signature_valid(public_key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class Result:
    ok: bool
    events: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    bad_line: int | None = None
    problem: str = ""


class BadLine(Exception):
    pass


def _field(record: dict, name: str, kind: type):
    value = record.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadLine(f"'{name}' is missing or not a {kind.__name__}")
    return value


def verify_lines(lines: Iterable[bytes], pinned_key_pem: str | None = None) -> Result:
    """Verify an export given as lines of bytes; stops at the first bad line."""
    result = Result(ok=False)
    walk: ChainWalk | None = None
    public_key = None
    key_id = ""
    finished = False
    number = 0
    try:
        for number, raw in enumerate(lines, start=1):
            if finished:
                raise BadLine("text after the trailer")
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as error:
                raise BadLine(f"not valid JSON ({error})") from error
            if not isinstance(record, dict):
                raise BadLine("not a JSON object")
            kind = record.get("type")
            if number == 1:
                if kind != "header" or record.get("format") != EXPORT_FORMAT:
                    raise BadLine(f"the first line must be the {EXPORT_FORMAT} header")
                pem = _field(record, "public_key", str)
                if pinned_key_pem is not None and pem.strip() != pinned_key_pem.strip():
                    raise BadLine("the export's public key is not the one you trust")
                try:
                    public_key = load_public_key(pem)
                except ValueError as error:
                    raise BadLine(f"unusable public key ({error})") from error
                key_id = key_id_of(public_key)
                if record.get("key_id") != key_id:
                    raise BadLine("key_id does not name the public key")
            elif kind == "event":
                seq = _field(record, "seq", int)
                occurred_at = _field(record, "occurred_at", str)
                body = _field(record, "body", str)
                if walk is None:
                    walk = ChainWalk() if seq == 1 else ChainWalk(start_seq=seq, prev_hash=None)
                    result.first_seq = seq
                problem = walk.add(
                    seq,
                    occurred_at,
                    _field(record, "prev_hash", str),
                    _field(record, "hash", str),
                    body,
                )
                if problem:
                    raise BadLine(problem)
                try:
                    content = json.loads(body)
                except ValueError as error:
                    raise BadLine(f"body is not valid JSON ({error})") from error
                if not isinstance(content, dict):
                    raise BadLine("body is not a JSON object")
                if content.get("seq") != seq or content.get("occurred_at") != occurred_at:
                    raise BadLine("body disagrees with the event's seq or time")
                result.last_seq = seq
            elif kind == "checkpoint":
                size = _field(record, "size", int)
                tip_hash = _field(record, "tip_hash", str)
                if walk is None or size != result.last_seq:
                    raise BadLine(f"checkpoint at {size} does not follow event {size}")
                if tip_hash != walk.tip_hash:
                    raise BadLine(f"checkpoint at {size} names another tip hash: rewritten")
                if record.get("key_id") != key_id:
                    raise BadLine("checkpoint signed with another key")
                signature = _field(record, "signature", str)
                if not signature_valid(public_key, checkpoint_message(size, tip_hash), signature):
                    raise BadLine(f"checkpoint at {size} has an invalid signature")
                result.checkpoints += 1
            elif kind == "end":
                events = walk.count if walk else 0
                if record.get("events") != events or record.get("checkpoints") != (
                    result.checkpoints
                ):
                    raise BadLine("trailer counts do not match the lines before it")
                finished = True
            else:
                raise BadLine(f"unknown line type {kind!r}")
        if not finished:
            number += 1
            raise BadLine("the trailer is missing: the file is cut off")
    except BadLine as error:
        result.bad_line = number
        result.problem = str(error)
        result.events = walk.count if walk else 0
        return result
    result.ok = True
    result.events = walk.count if walk else 0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.offline_verify", description="Verify a Gatehouse audit export."
    )
    parser.add_argument("file", help="the JSON Lines export from `manage.py audit_export`")
    parser.add_argument(
        "--public-key", help="PEM file of the key you trust (from /audit/public-key.pem)"
    )
    options = parser.parse_args(argv)
    pinned = None
    if options.public_key:
        with open(options.public_key, encoding="utf-8") as handle:
            pinned = handle.read()
    with open(options.file, "rb") as handle:
        result = verify_lines(handle, pinned)
    if result.ok:
        span = f"seq {result.first_seq}..{result.last_seq}" if result.events else "no events"
        anchor = "" if result.first_seq in (None, 1) else " (partial export: anchored at its start)"
        print(f"intact: {result.events} events ({span}){anchor}, {result.checkpoints} checkpoints")
        if pinned is None:
            print("note: the public key was taken from the export; pass --public-key to pin it")
        return 0
    print(f"line {result.bad_line}: {result.problem}")
    print(f"first bad line: {result.bad_line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
