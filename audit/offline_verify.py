"""Verify an audit export on any machine: `python -m audit.offline_verify FILE`.

Needs only the standard library, `audit.chain`, `audit.merkle` and `cryptography`; never Django,
so an external auditor can run it against the file alone. It checks the file line by line:

- the header's public key, and the key rotations that tie older keys to it;
- every event's link, hash and sequence number, and the Merkle tree over the event hashes (a
  partial export carries the tree's frontier before its first event);
- every signed checkpoint (tree head) against the events before it;
- the head signed at export time over the last event, and the consistency proof that ties it to
  the whole trail's head at export time ("partial: seq A..B of N");
- the trailer's counts, and its signature over every line before it.

An export whose last events no signed head covers fails, naming them, unless
`--allow-unsigned-tail`, which then warns. Exit status 0 when intact, 1 when not, and then the
last line is `first bad line: N`.

Pass `--public-key FILE` with the key published by the portal (`/audit/public-key.pem`), current
or retired: otherwise the verifier trusts the key inside the export, which a forger could have
replaced with their own.
"""

import argparse
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import (
    ChainWalk,
    checkpoint_message,
    event_hash,
    evidence_manifest_message,
    export_seal_message,
    key_rotation_message,
    tree_head_message,
)
from audit.merkle import Frontier, leaf_of, verify_consistency, verify_inclusion

EXPORT_FORMAT = "gatehouse-audit-export/v2"
EXPORT_FORMATS = ("gatehouse-audit-export/v1", EXPORT_FORMAT)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 over the raw public key; the portal names keys the same."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


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


def rotation_valid(rotation: dict) -> tuple[Ed25519PublicKey, Ed25519PublicKey] | None:
    """The two keys of a rotation record (the fields of `AuditKeyRotation`, times as text) when
    each key has the id the record gives it and each signed the record; otherwise None."""
    try:
        old = load_public_key(rotation["old_public_key"])
        new = load_public_key(rotation["new_public_key"])
        message = key_rotation_message(
            rotation["old_key_id"],
            raw_public_key(old).hex(),
            rotation["new_key_id"],
            raw_public_key(new).hex(),
            rotation["rotated_at"],
        )
    except (KeyError, TypeError, ValueError):
        return None
    if key_id_of(old) != rotation["old_key_id"] or key_id_of(new) != rotation["new_key_id"]:
        return None
    if not signature_valid(old, message, str(rotation.get("old_signature", ""))):
        return None
    if not signature_valid(new, message, str(rotation.get("new_signature", ""))):
        return None
    return old, new


def extend_trust(
    trusted: dict[str, Ed25519PublicKey], rotations: Iterable[dict]
) -> dict[str, Ed25519PublicKey]:
    """Every key that valid rotation records link to a trusted one, in either direction: both
    keys signed each record, so whoever trusts one may trust the other."""
    ring = dict(trusted)
    pairs = [pair for pair in map(rotation_valid, rotations) if pair is not None]
    grew = True
    while grew:
        grew = False
        for old, new in pairs:
            old_id, new_id = key_id_of(old), key_id_of(new)
            if (old_id in ring) != (new_id in ring):
                ring.setdefault(old_id, old)
                ring.setdefault(new_id, new)
                grew = True
    return ring


@dataclass
class Result:
    ok: bool
    events: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    trail_size: int | None = None
    bad_line: int | None = None
    problem: str = ""
    warnings: list[str] = field(default_factory=list)


class BadLine(Exception):
    pass


def _field(record: dict, name: str, kind: type):
    value = record.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadLine(f"'{name}' is missing or not a {kind.__name__}")
    return value


class _Check:
    """The state of one pass over an export."""

    def __init__(self, pinned_key_pem: str | None):
        self.pinned_key_pem = pinned_key_pem
        self.result = Result(ok=False)
        self.walk: ChainWalk | None = None
        self.frontier: Frontier | None = None
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.export_key: Ed25519PublicKey | None = None
        self.format = ""
        self.first_seq: int | None = None
        self.prefix: list = []
        # The last sequence number a verified signature covers, and the line of the first
        # event after it: where an unsigned tail starts.
        self.covered = 0
        self.uncovered_line: int | None = None
        self.headed = False
        self.finished = False
        self.seal_problem = ""
        self.digest = hashlib.sha256()

    def line(self, number: int, record: dict) -> None:
        kind = record.get("type")
        if number == 1:
            self.header(record)
        elif self.headed and kind != "end":
            raise BadLine("only the trailer may follow the signed head")
        elif kind == "event":
            self.event(number, record)
        elif kind == "checkpoint":
            self.checkpoint(record)
        elif kind == "head":
            self.head(record)
        elif kind == "end":
            self.end(record)
        else:
            raise BadLine(f"unknown line type {kind!r}")

    def header(self, record: dict) -> None:
        self.format = record.get("format", "")
        if record.get("type") != "header" or self.format not in EXPORT_FORMATS:
            raise BadLine(f"the first line must be the {EXPORT_FORMAT} header")
        pem = _field(record, "public_key", str)
        try:
            self.export_key = load_public_key(pem)
            anchor = load_public_key(self.pinned_key_pem) if self.pinned_key_pem else None
        except ValueError as error:
            raise BadLine(f"unusable public key ({error})") from error
        key_id = key_id_of(self.export_key)
        if record.get("key_id") != key_id:
            raise BadLine("key_id does not name the public key")
        rotations = record.get("rotations") or []
        if not isinstance(rotations, list):
            raise BadLine("'rotations' is not a list")
        trusted = anchor or self.export_key
        self.keys = extend_trust({key_id_of(trusted): trusted}, rotations)
        if key_id not in self.keys:
            raise BadLine("the export's public key is not the one you trust")
        first_seq = record.get("first_seq")
        if first_seq is not None:
            self.first_seq = _field(record, "first_seq", int)
        self.prefix = record.get("prefix") or []

    def event(self, number: int, record: dict) -> None:
        result = self.result
        seq = _field(record, "seq", int)
        occurred_at = _field(record, "occurred_at", str)
        body = _field(record, "body", str)
        stored_hash = _field(record, "hash", str)
        if self.walk is None:
            self.start(seq)
        problem = self.walk.add(
            seq, occurred_at, _field(record, "prev_hash", str), stored_hash, body
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
        if self.frontier is not None:
            self.frontier.add(leaf_of(stored_hash))
        if self.uncovered_line is None:
            self.uncovered_line = number
        result.last_seq = seq

    def start(self, seq: int) -> None:
        """The first event: from the genesis, or after the frontier the header carries."""
        if self.first_seq is not None and seq != self.first_seq:
            raise BadLine(f"the header says the export starts at {self.first_seq}, not {seq}")
        self.walk = ChainWalk() if seq == 1 else ChainWalk(start_seq=seq, prev_hash=None)
        self.result.first_seq = seq
        self.covered = seq - 1
        if seq == 1 or self.format == EXPORT_FORMAT:
            try:
                self.frontier = Frontier.from_hex(seq - 1, self.prefix)
            except (TypeError, ValueError) as error:
                raise BadLine(f"the header's prefix does not fit seq {seq} ({error})") from error

    def signed(self, record: dict, size: int, tip_hash: str, what: str, *, ours=True) -> str:
        """Check a signed tree head and, when it is over the events so far (`ours`), its root
        against theirs; returns the root, hex."""
        key = self.keys.get(record.get("key_id"))
        if key is None:
            raise BadLine(f"{what} is signed with a key you do not trust ({record.get('key_id')})")
        root = record.get("root")
        signature = _field(record, "signature", str)
        message = (
            checkpoint_message(size, tip_hash)
            if root is None
            else tree_head_message(size, tip_hash, _field(record, "root", str))
        )
        if not signature_valid(key, message, signature):
            raise BadLine(f"{what} has an invalid signature")
        frontier = self.frontier if ours else None
        if root is not None and frontier is not None and root != frontier.root().hex():
            raise BadLine(
                f"events {self.covered + 1}..{size} are not the ones {what} signed: "
                f"edited, added or made up"
            )
        return root

    def checkpoint(self, record: dict) -> None:
        size = _field(record, "size", int)
        tip_hash = _field(record, "tip_hash", str)
        if self.walk is None or size != self.result.last_seq:
            raise BadLine(f"checkpoint at {size} does not follow event {size}")
        if tip_hash != self.walk.tip_hash:
            raise BadLine(f"checkpoint at {size} names another tip hash: rewritten")
        self.signed(record, size, tip_hash, f"the checkpoint at {size}")
        self.result.checkpoints += 1
        self.covered, self.uncovered_line = size, None

    def head(self, record: dict) -> None:
        """The head signed at export time over the last event, and the trail's head then."""
        size = _field(record, "size", int)
        if self.walk is None or size != self.result.last_seq:
            raise BadLine(f"the signed head is over {size} events, the export ends at another")
        tip_hash = _field(record, "tip_hash", str)
        if tip_hash != self.walk.tip_hash:
            raise BadLine(f"the signed head at {size} names another tip hash: rewritten")
        root = self.signed(record, size, tip_hash, f"the signed head at {size}")
        trail = _field(record, "trail", dict)
        trail_size = _field(trail, "size", int)
        trail_root = root
        if trail_size != size:
            tip = _field(trail, "tip_hash", str)
            what = f"the trail's head at {trail_size}"
            trail_root = self.signed(trail, trail_size, tip, what, ours=False)
        proof_hex = _field(trail, "consistency", list)
        try:
            proof = [bytes.fromhex(node) for node in proof_hex]
            consistent = verify_consistency(
                size, trail_size, bytes.fromhex(root), bytes.fromhex(trail_root), proof
            )
        except (TypeError, ValueError):
            consistent = False
        if not consistent:
            raise BadLine(
                f"the head at {size} is not consistent with the trail's head at {trail_size}: "
                f"the trail was rewritten between them"
            )
        self.result.trail_size = trail_size
        self.covered, self.uncovered_line = size, None
        self.headed = True

    def end(self, record: dict) -> None:
        events = self.walk.count if self.walk else 0
        if record.get("events") != events or record.get("checkpoints") != self.result.checkpoints:
            raise BadLine("trailer counts do not match the lines before it")
        self.finished = True
        if self.format != EXPORT_FORMAT:
            self.seal_problem = "the export has no seal (an export in the format before v2)"
        elif record.get("digest") != self.digest.hexdigest() or not signature_valid(
            self.export_key,
            export_seal_message(self.digest.hexdigest()),
            str(record.get("signature", "")),
        ):
            self.seal_problem = "the seal does not match: lines were removed, added or changed"


def verify_lines(
    lines: Iterable[bytes], pinned_key_pem: str | None = None, allow_unsigned_tail: bool = False
) -> Result:
    """Verify an export given as lines of bytes; stops at the first bad line."""
    check = _Check(pinned_key_pem)
    result = check.result
    number = 0
    try:
        for number, raw in enumerate(lines, start=1):
            if check.finished:
                raise BadLine("text after the trailer")
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as error:
                raise BadLine(f"not valid JSON ({error})") from error
            if not isinstance(record, dict):
                raise BadLine("not a JSON object")
            check.line(number, record)
            check.digest.update(raw.rstrip(b"\r\n") + b"\n")
        problems = []
        if check.walk is not None and check.covered < result.last_seq:
            problems.append(
                (
                    check.uncovered_line,
                    f"events {check.covered + 1}..{result.last_seq} are not covered by a signed "
                    f"head: the export was cut short or its signed lines removed",
                )
            )
        if not check.finished:
            problems.append((number + 1, "the trailer is missing: the file is cut off"))
        elif check.seal_problem:
            problems.append((number, check.seal_problem))
        if problems and not allow_unsigned_tail:
            number = problems[0][0]
            raise BadLine(problems[0][1])
        result.warnings = [problem for _line, problem in problems]
    except BadLine as error:
        result.bad_line = number
        result.problem = str(error)
        result.events = check.walk.count if check.walk else 0
        return result
    result.ok = True
    result.events = check.walk.count if check.walk else 0
    return result


def describe(result: Result) -> list[str]:
    """What the verifier prints for a file that holds."""
    if not result.events:
        return ["intact: no events"]
    span = f"seq {result.first_seq}..{result.last_seq}"
    lines = [f"intact: {result.events} events ({span}), {result.checkpoints} checkpoints"]
    total = result.trail_size
    if result.first_seq != 1 or (total is not None and total != result.last_seq):
        lines.append(f"partial: {span} of {total if total is not None else 'an unknown total'}")
    if total is not None:
        lines.append(f"signed at export time: the trail then held {total} events")
    return lines


EVIDENCE_FILES = ("evidence.json", "evidence.pdf", "events.jsonl", "public_key.pem")


def verify_evidence(pack_path: str, pinned_key_pem: str | None = None) -> tuple[bool, list[str]]:
    """Check an evidence pack (`releases.evidence_pack`) alone: the signed tree head, the
    manifest that signs every file's digest, and each event's hash and Merkle inclusion proof
    against that head. No other event's body is needed. Returns (intact, what was found)."""
    try:
        with zipfile.ZipFile(pack_path) as pack:
            names = set(pack.namelist())
            missing = [name for name in ("head.json", *EVIDENCE_FILES) if name not in names]
            if missing:
                return False, [f"the pack lacks {', '.join(missing)}"]
            head = json.loads(pack.read("head.json"))
            files = {name: pack.read(name) for name in EVIDENCE_FILES}
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError) as broken:
        return False, [f"not a readable evidence pack: {broken}"]
    try:
        key = load_public_key(pinned_key_pem or files["public_key.pem"].decode())
        size, tip, root = int(head["size"]), str(head["tip_hash"]), str(head["root"])
        listed, manifest = dict(head["files"]), str(head["manifest_signature"])
        head_signature = str(head["signature"])
    except (KeyError, TypeError, ValueError) as broken:
        return False, [f"head.json is malformed: {broken}"]
    if pinned_key_pem is not None and files["public_key.pem"].decode().strip() != (
        pinned_key_pem.strip()
    ):
        return False, ["the pack was signed with another key than the one pinned"]
    if not signature_valid(key, tree_head_message(size, tip, root), head_signature):
        return False, ["the tree head's signature does not verify"]
    if not signature_valid(key, evidence_manifest_message(listed, root), manifest):
        return False, ["the manifest's signature does not verify"]
    for name, content in files.items():
        if listed.get(name) != hashlib.sha256(content).hexdigest():
            return False, [f"{name} is not the file the manifest signed"]
    facts = json.loads(files["evidence.json"])
    seqs = []
    for number, line in enumerate(files["events.jsonl"].decode().splitlines(), start=1):
        try:
            event = json.loads(line)
            seq, proof = int(event["seq"]), [bytes.fromhex(node) for node in event["proof"]]
            recomputed = event_hash(event["prev_hash"], seq, event["occurred_at"], event["body"])
        except (KeyError, TypeError, ValueError) as broken:
            return False, [f"events.jsonl line {number} is malformed: {broken}"]
        if recomputed != event["hash"]:
            return False, [f"event {seq}: its hash does not match its contents"]
        if not verify_inclusion(leaf_of(event["hash"]), seq - 1, size, proof, bytes.fromhex(root)):
            return False, [f"event {seq}: its inclusion proof does not lead to the signed root"]
        seqs.append(seq)
    if seqs != facts.get("events"):
        return False, ["events.jsonl does not hold exactly the events evidence.json lists"]
    return True, [
        f"evidence pack of {head.get('change_request', '?')}: intact",
        f"{len(seqs)} events proved against the signed head of {size} events (root {root})",
        f"signed by key {key_id_of(key)}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.offline_verify", description="Verify a Gatehouse audit export."
    )
    parser.add_argument(
        "file", nargs="?", help="the JSON Lines export from `manage.py audit_export`"
    )
    parser.add_argument(
        "--evidence", metavar="PACK", help="verify a change request's evidence pack (zip) instead"
    )
    parser.add_argument(
        "--public-key", help="PEM file of the key you trust (from /audit/public-key.pem)"
    )
    parser.add_argument(
        "--allow-unsigned-tail",
        action="store_true",
        help="accept events after the last signed head (an export cut short), with a warning",
    )
    options = parser.parse_args(argv)
    pinned = None
    if options.public_key:
        with open(options.public_key, encoding="utf-8") as handle:
            pinned = handle.read()
    if options.evidence:
        intact, found = verify_evidence(options.evidence, pinned)
        for line in found:
            print(line)
        if intact and pinned is None:
            print("note: the public key was taken from the pack; pass --public-key to pin it")
        return 0 if intact else 1
    if not options.file:
        parser.error("name an export file, or --evidence PACK")
    with open(options.file, "rb") as handle:
        result = verify_lines(handle, pinned, options.allow_unsigned_tail)
    if result.ok:
        for line in describe(result):
            print(line)
        for warning in result.warnings:
            print(f"WARNING: {warning}. These events are covered by no signed head.")
        if result.warnings:
            print("WARNING: accepted only because of --allow-unsigned-tail: not evidence.")
        if pinned is None:
            print("note: the public key was taken from the export; pass --public-key to pin it")
        return 0
    print(f"line {result.bad_line}: {result.problem}")
    print(f"first bad line: {result.bad_line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
