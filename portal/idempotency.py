"""`Idempotency-Key` for the POSTs that CI retries (registration, deployment start and result,
rollback): the same key with the same body answers what the first request answered, without
acting again; the same key with another body is 422. Keys are per caller."""

import hashlib
import json
import re
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.models import IdempotentRequest

KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _caller(user) -> str:
    kind = "service" if getattr(user, "is_service_account", False) else "user"
    return f"{kind}:{user.pk}"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(view_method):
    """Wrap an APIView's post. The first request and its stored answer commit together, so a
    retry, even one racing the first, can never act a second time. Refusals raised as errors
    are not stored: a retry is judged again and gets the same refusal."""

    @wraps(view_method)
    def post(view, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view_method(view, request, *args, **kwargs)
        if not KEY.match(key):
            return Response(
                {"code": "invalid_idempotency_key", "detail": "1-255 printable ASCII characters."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        caller, fingerprint = _caller(request.user), _fingerprint(request)
        try:
            with transaction.atomic():
                found = IdempotentRequest.objects.filter(caller=caller, key=key).first()
                if found is None:
                    response = view_method(view, request, *args, **kwargs)
                    if response.status_code >= 500:
                        return response
                    # A concurrent first request with the key waits here on the unique index,
                    # then fails and is rolled back whole: it replays this answer below.
                    IdempotentRequest.objects.create(
                        caller=caller,
                        key=key,
                        fingerprint=fingerprint,
                        status_code=response.status_code,
                        body=json.loads(JSONRenderer().render(response.data) or b"null"),
                    )
                    return response
        except IntegrityError:
            found = IdempotentRequest.objects.get(caller=caller, key=key)
        if found.fingerprint != fingerprint:
            return Response(
                {
                    "code": "idempotency_key_reused",
                    "detail": "This Idempotency-Key was used with another request.",
                },
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        replay = Response(found.body, status=found.status_code)
        replay["Idempotent-Replayed"] = "true"
        return replay

    return post


def idempotent_requests_prune() -> int:
    """Forget answers older than GATEHOUSE_IDEMPOTENCY_DAYS: a CI job retries within minutes or
    hours, and the table must not grow with every request ever sent. Returns how many went."""
    cutoff = timezone.now() - timedelta(days=settings.GATEHOUSE_IDEMPOTENCY_DAYS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
