from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_checkpoint_create
from portal.exceptions import DomainError


class Command(BaseCommand):
    help = "Sign the audit trail's current tip now (Ed25519)."

    def handle(self, *args, **options):
        try:
            checkpoint = audit_checkpoint_create(actor=None)
        except DomainError as error:
            raise CommandError(error.detail) from error
        self.stdout.write(
            f"checkpoint #{checkpoint.pk}: {checkpoint.size} events, tip {checkpoint.tip_hash}, "
            f"key {checkpoint.key_id}"
        )
