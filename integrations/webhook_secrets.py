"""What a webhook subscription keeps secret, and how it signs with it.

A Standard Webhooks receiver checks an HMAC made with the subscription's secret, so the portal
must be able to read the secret back: it cannot keep only a hash, as it does for API tokens. The
secret, and the endpoint URL (a Teams or Slack URL carries its own credential in its path), are
stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256) under the keys of
`settings.WEBHOOK_ENCRYPTION_KEYS`, so a database dump, a backup or a replica does not give
them away. The secret is shown once, when it is made; nothing displays it again.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105 - the Standard Webhooks label, not a secret
SECRET_BYTES = 32


@cache
def _box(keys: tuple[str, ...], fallback: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse webhook secrets"
    ).derive(fallback.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def box() -> MultiFernet:
    return _box(tuple(settings.WEBHOOK_ENCRYPTION_KEYS), settings.SECRET_KEY)


def seal(text: str) -> str:
    return box().encrypt(text.encode()).decode()


def unseal(sealed: str) -> str | None:
    """The text, or None when none of the configured keys opens it."""
    try:
        return box().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


class SealedTextField(models.TextField):
    """Plain text in Python, encrypted in the database. A value no configured key opens reads
    as the empty string: the delivery log then says the key is missing, rather than every page
    that lists subscriptions failing."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return unseal(value) or ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return seal(value) if value else value


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(*, secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, as Standard Webhooks asks."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{int(timestamp.timestamp())}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"
