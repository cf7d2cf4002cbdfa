"""Fixed vectors pin the hash recipe: a change to it breaks every export ever made."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import keys
from audit.chain import (
    GENESIS_HASH,
    ChainWalk,
    checkpoint_message,
    event_hash,
    format_timestamp,
)

BODY = {
    "seq": 1,
    "occurred_at": "2026-01-02T03:04:05.000006Z",
    "actor": {"kind": "user", "id": "7", "name": "Zoë Ångström"},
    "action": "change_request.signed",
    "data": {"meaning": "Ich genehmige CR-42 — für Modellrisiko ✓", "z": 1, "a": [1.5, "日本"]},
}
CANONICAL = (
    '{"action":"change_request.signed","actor":{"id":"7","kind":"user","name":"Zoë Ångström"},'
    '"data":{"a":[1.5,"日本"],"meaning":"Ich genehmige CR-42 — für Modellrisiko ✓","z":1},'
    '"occurred_at":"2026-01-02T03:04:05.000006Z","seq":1}'
)
FIRST_HASH = "ba51d9f340f38e2c66d8ad57f89eab34c928fdb5816e52f4199dd4977ed09c74"
SECOND_HASH = "6b3274c7af9d479b43cc8eda4d88fa1eee8bbe9fcb2161b13d815323ac6b0e01"


def test_canonical_json_sorts_keys_and_keeps_non_ascii_as_utf8():
    assert rfc8785.dumps(BODY).decode() == CANONICAL


def test_event_hash_vector_with_non_ascii_text():
    assert event_hash(GENESIS_HASH, 1, "2026-01-02T03:04:05.000006Z", CANONICAL) == FIRST_HASH


def test_event_hash_is_sha256_over_the_newline_joined_utf8_fields():
    material = "\n".join(["0" * 64, "1", "2026-01-02T03:04:05.000006Z", CANONICAL]).encode("utf-8")
    assert hashlib.sha256(material).hexdigest() == FIRST_HASH


def test_second_link_vector():
    assert event_hash(FIRST_HASH, 2, "2026-01-02T03:04:06.000000Z", '{"seq":2}') == SECOND_HASH


def test_timestamp_form_is_utc_with_microseconds_and_z():
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 1, 2, 5, 4, 5, 6, tzinfo=plus_two)) == (
        "2026-01-02T03:04:05.000006Z"
    )
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.000000Z"
    )


def test_checkpoint_message_signature_and_key_id_vectors(settings):
    message = checkpoint_message(2, FIRST_HASH)
    assert message == f"gatehouse-audit-checkpoint/v1\n2\n{FIRST_HASH}".encode()
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    settings.AUDIT_SIGNING_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert keys.current_key_id() == "56475aa75463474c"
    assert keys.sign(message) == (
        "29539526bb8e6250054bf4e3cfdcf2b7e1089ca7b5c0d6818a8fc2ebba024845"
        "c0117c1cfce043bbc9c2c8b9e20abf941b3ed57b120e8e49560a7facb3ae2001"
    )


def test_walk_accepts_the_vectors_and_names_the_bad_event():
    walk = ChainWalk()
    assert walk.add(1, "2026-01-02T03:04:05.000006Z", GENESIS_HASH, FIRST_HASH, CANONICAL) == ""
    assert walk.add(2, "2026-01-02T03:04:06.000000Z", FIRST_HASH, SECOND_HASH, '{"seq":2}') == ""
    assert walk.tip_hash == SECOND_HASH

    edited = ChainWalk()
    problem = edited.add(1, "2026-01-02T03:04:05.000006Z", GENESIS_HASH, FIRST_HASH, CANONICAL[:-1])
    assert "hash" in problem
    assert edited.bad_seq == 1

    gap = ChainWalk()
    gap.add(1, "2026-01-02T03:04:05.000006Z", GENESIS_HASH, FIRST_HASH, CANONICAL)
    assert "missing" in gap.add(3, "t", FIRST_HASH, "x", "{}")
    assert gap.bad_seq == 2
