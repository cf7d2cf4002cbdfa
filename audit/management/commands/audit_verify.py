import sys

from django.core.management.base import BaseCommand

from audit.services import audit_verify
from audit.verification import describe


class Command(BaseCommand):
    help = (
        "Verify the whole audit trail: every hash, link, the gapless sequence and every signed "
        "checkpoint. Exit status 0 when intact, 1 when not (last line: first bad event: N)."
    )

    def handle(self, *args, **options):
        run, report = audit_verify(actor=None)
        self.stdout.write(describe(report))
        self.stdout.write(f"speed: {report.events_per_second:,.0f} events per second")
        if not run.ok:
            self.stdout.write(f"problem: {run.problem}")
            self.stdout.write(f"first bad event: {run.first_bad_seq}")
            sys.exit(1)
