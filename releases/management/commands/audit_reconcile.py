import sys
import time

from django.core.management.base import BaseCommand

from releases.services.reconciliation import reconcile


class Command(BaseCommand):
    help = (
        "Replay the audit trail for change requests, sign-offs, deployments, policies, "
        "memberships and service accounts and compare it with their rows. Lists every field the "
        "trail does not explain; exit status 0 when every row is explained, 1 when not."
    )

    def handle(self, *args, **options):
        started = time.perf_counter()
        result = reconcile(actor=None)
        took = time.perf_counter() - started
        for finding in sorted(result.open, key=lambda f: (f.object_type, f.object_id, f.field)):
            new = "new " if finding in result.opened else ""
            self.stdout.write(
                f"{new}finding: {finding.object_type} {finding.object_id} {finding.field}: "
                f"trail says {finding.expected}, row holds {finding.found}"
            )
        self.stdout.write(
            f"{len(result.open)} open finding(s), {len(result.opened)} new, "
            f"{len(result.resolved)} resolved, in {took:.2f} s"
        )
        if result.open:
            sys.exit(1)
