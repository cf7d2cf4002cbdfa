from celery import shared_task

from audit.services import audit_checkpoint_create, audit_verify, merkle_chunks_fill


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def audit_verify_and_checkpoint() -> dict:
    """Verify the whole trail and, only when it is intact, sign its tip and store the Merkle
    roots of its new complete chunks (for evidence packs). Idempotent: with no new event the
    latest checkpoint is kept."""
    run, _report = audit_verify(actor=None)
    if not run.ok:
        return {"ok": False, "first_bad_event": run.first_bad_seq}
    checkpoint = audit_checkpoint_create(actor=None)
    chunks = merkle_chunks_fill(size=checkpoint.size)
    return {"ok": True, "checkpoint": checkpoint.pk, "size": checkpoint.size, "chunks": chunks}
