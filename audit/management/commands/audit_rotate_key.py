from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_signing_key_rotate
from portal.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Replace the audit signing key. The retired public key stays trusted for the checkpoints "
        "it signed and is published with the current one. With AUDIT_SIGNING_KEY set, pass the "
        "new key with --new-key-file and then put it in AUDIT_SIGNING_KEY."
    )

    def add_arguments(self, parser):
        parser.add_argument("--new-key-file", type=Path, help="PEM of the new Ed25519 key")

    def handle(self, *args, new_key_file, **options):
        pem = new_key_file.read_bytes() if new_key_file else None
        try:
            rotation = audit_signing_key_rotate(actor=None, new_key_pem=pem)
        except (DomainError, ValueError) as error:
            raise CommandError(getattr(error, "detail", str(error))) from error
        self.stdout.write(f"retired key {rotation.old_key_id}; signing with {rotation.new_key_id}")
        if new_key_file:
            self.stdout.write("now set AUDIT_SIGNING_KEY to the new key and restart the portal")
