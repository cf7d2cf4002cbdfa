import importlib

from django.core.management.base import BaseCommand
from django.db import transaction

from organisation.demo import DEMO_PASSWORD, seed_organisation

# Apps that add to the demo expose `demo.seed(stdout)`; they run in dependency order.
DEMO_APPS = ["audit", "organisation", "registry", "releases"]


class Command(BaseCommand):
    help = "Create or complete the demo organisation and history. Safe to run again."

    def handle(self, *args, **options):
        with transaction.atomic():
            logins = seed_organisation()
            for app in DEMO_APPS:
                try:
                    module = importlib.import_module(f"{app}.demo")
                except ModuleNotFoundError as error:
                    if error.name != f"{app}.demo":
                        raise
                    continue
                module.seed(self.stdout)
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, full_name, roles in logins:
            self.stdout.write(f"  {username:<10} {full_name:<16} {roles}")
