"""Rule 6 for single sign-on, the one rule every signature confirmed at the identity provider
follows, whatever is signed (a change request's sign-off in `releases`, a validation in
`registry`): the provider's verified claims confirm this pending signature, by its signer, with
a sign-in after the portal sent them there and recent enough. Each app keeps its own pending
signatures and what is signed; this decides only whether the answer confirms the signer."""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from portal.exceptions import Conflict, NotFound, RuleDenied
from portal.models import ProviderIdentity

# The identity provider's clock and ours may disagree by this much about when a signer signed in.
STEP_UP_CLOCK_SKEW = timedelta(seconds=10)


@dataclass(frozen=True)
class PendingSignature:
    """What the confirmation needs of a signature waiting at the provider: whose it is, the
    nonce it sent, when, whether its answer was taken (`taken`) and whether it was used for a
    signature or a refusal already (`used`)."""

    signer_id: int
    nonce: str
    issued_at: datetime
    taken: bool
    used: bool


@dataclass(frozen=True)
class ProviderReauthentication:
    """How the identity provider confirmed a signer: when they signed in there again and at
    which assurance (`acr`)."""

    auth_time: datetime
    acr: str


def step_up_replayed() -> Conflict:
    return Conflict(
        "This answer of the identity provider was used already; sign again.",
        code="step_up_replayed",
    )


def pending_signature_take(pending: QuerySet, *, actor, state: str, now: datetime, unknown: str):
    """The pending signature of `pending` (a model with `state`, `signer` and `taken_at`) that
    the provider's answer names by its `state`, locked and taken once, before the provider is
    asked anything more: a second answer with that state is a replay. Someone else's is not
    found either (`unknown` says so): its state tells nobody anything. In the caller's
    transaction."""
    step_up = pending.select_for_update(of=("self",)).filter(state=state).first() if state else None
    if step_up is None or step_up.signer_id != actor.pk:
        raise NotFound(unknown, code="step_up_unknown")
    if step_up.taken_at is not None:
        raise step_up_replayed()
    step_up.taken_at = now
    step_up.save(update_fields=["taken_at"])
    return step_up


def _auth_time(claims: Mapping) -> datetime | None:
    value = claims.get("auth_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def provider_reauthentication(
    *, actor, pending: PendingSignature, claims: Mapping, now: datetime
) -> ProviderReauthentication:
    """Whether the provider's verified claims confirm `pending` by `actor`, just now: its nonce
    and no other, the signer's own subject at the provider, an `auth_time` after the signature
    was issued and at most GATEHOUSE_OIDC_STEP_UP_SECONDS ago; a used one is a replay. The
    confirmation to sign with if they do; a refusal with a stable code if not."""
    if not pending.taken or pending.signer_id != actor.pk:
        raise RuleDenied(
            "The identity provider has not answered for this signature yet: sign in there when "
            "it asks, and come back to the portal.",
            code="step_up_not_taken",
        )
    if pending.used:
        raise step_up_replayed()
    if not secrets.compare_digest(str(claims.get("nonce", "")), pending.nonce):
        raise RuleDenied(
            "The identity provider's answer belongs to another signature; nothing was signed. "
            "Start signing again from the page you signed on.",
            code="step_up_mismatch",
        )
    if not ProviderIdentity.objects.filter(
        user=actor, issuer=claims.get("iss", ""), subject=str(claims.get("sub", ""))
    ).exists():
        raise RuleDenied(
            "You signed in at the identity provider as someone else; nothing was signed. Sign "
            "again, and sign in at the provider as yourself.",
            code="step_up_wrong_signer",
        )
    auth_time = _auth_time(claims)
    limit = timedelta(seconds=settings.GATEHOUSE_OIDC_STEP_UP_SECONDS)
    if auth_time is None:
        raise RuleDenied(
            "The identity provider did not say when you signed in; nothing was signed. Sign "
            "again; if it keeps happening, an administrator checks that the provider sends "
            "auth_time.",
            code="step_up_stale",
        )
    if auth_time < pending.issued_at - STEP_UP_CLOCK_SKEW or now - auth_time > limit:
        raise RuleDenied(
            "The identity provider answered with an earlier sign-in, not a new one; nothing was "
            "signed. Sign again and sign in at the provider when it asks.",
            code="step_up_stale",
        )
    return ProviderReauthentication(auth_time=auth_time, acr=str(claims.get("acr") or ""))
