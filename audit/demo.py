"""The audit part of the demo: the Auditors group with the `auditor` persona in it, and a first
signed checkpoint and verification so the auditor pages have something to show. (The hourly
verification is scheduled for every installation by `portal.schedules`.)"""

from django.contrib.auth import get_user_model

from audit.models import AuditCheckpoint, AuditVerification
from audit.services import audit_checkpoint_create, audit_verify, auditor_add


def seed(stdout) -> None:
    auditor = get_user_model().objects.filter(username="auditor").first()
    if auditor is not None:
        auditor_add(actor=None, user=auditor)
    if not AuditCheckpoint.objects.exists():
        checkpoint = audit_checkpoint_create(actor=None)
        stdout.write(f"Audit: signed checkpoint at {checkpoint.size} events.")
    if not AuditVerification.objects.exists():
        audit_verify(actor=None)
