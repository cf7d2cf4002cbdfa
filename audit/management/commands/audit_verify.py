import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.services import audit_verify
from audit.verification import describe


class Command(BaseCommand):
    help = (
        "Verify the whole audit trail: every hash, link, the gapless sequence, every signed tree "
        "head and its Merkle root, that the trail never got shorter than a checkpoint or an "
        "earlier verification, and with --witness every head a witness holds. Exit status 0 when "
        "intact, 1 when not (last line: first bad event: N)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--witness",
            type=Path,
            metavar="DIR",
            help="a witness directory (AUDIT_WITNESS_DIR, or a copy of the WORM bucket)",
        )

    def handle(self, *args, witness, **options):
        if witness is not None and not witness.is_dir():
            self.stderr.write(f"no witness directory at {witness}")
            sys.exit(2)
        run, report = audit_verify(actor=None, witness_dir=witness)
        self.stdout.write(describe(report))
        self.stdout.write(f"speed: {report.events_per_second:,.0f} events per second")
        if not run.ok:
            self.stdout.write(f"problem: {run.problem}")
            self.stdout.write(f"first bad event: {run.first_bad_seq}")
            sys.exit(1)
