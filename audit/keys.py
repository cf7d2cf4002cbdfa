"""The Ed25519 key that signs audit checkpoints.

Production passes the private key as PEM in `AUDIT_SIGNING_KEY`. The embedded default generates
one into `AUDIT_SIGNING_KEY_FILE` on first use and says so in the log, because a key that lives
next to the database it protects only guards against accidents, not against its administrator.
"""

import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

# The offline verifier is the reference for key ids; the portal names its keys the same way.
from audit.offline_verify import key_id_of

logger = logging.getLogger(__name__)


def _load_pem(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("AUDIT_SIGNING_KEY must be an Ed25519 private key.")
    return key


def _generate_into(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: when two processes race on first use, one writes and the other reads its key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_pem(path.read_bytes())
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    logger.warning(
        "Generated a new audit signing key in %s. Set AUDIT_SIGNING_KEY in production and keep "
        "the key away from the database it protects.",
        path,
    )
    return key


@lru_cache(maxsize=4)
def _private_key(pem_setting: str, key_file: str) -> Ed25519PrivateKey:
    if pem_setting:
        return _load_pem(pem_setting.encode())
    path = Path(key_file)
    if path.exists():
        return _load_pem(path.read_bytes())
    return _generate_into(path)


def private_key() -> Ed25519PrivateKey:
    return _private_key(settings.AUDIT_SIGNING_KEY, str(settings.AUDIT_SIGNING_KEY_FILE))


def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def public_key_pem() -> str:
    return (
        public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def current_key_id() -> str:
    return key_id_of(public_key())


def sign(message: bytes) -> str:
    return private_key().sign(message).hex()
