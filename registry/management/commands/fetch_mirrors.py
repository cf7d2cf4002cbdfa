from django.core.management.base import BaseCommand, CommandError

from registry import git


class Command(BaseCommand):
    help = "Fetch every repository's local git mirror (cloning it on first use)."

    def handle(self, *args, **options):
        results = git.fetch_mirrors()
        for result in results:
            mark = "ok" if result.ok else "FAILED"
            self.stdout.write(f"{mark:<6} {result.repository.url}: {result.detail}")
        if not results:
            self.stdout.write("No repository has a mirror configured.")
        if any(not result.ok for result in results):
            raise CommandError("Some mirrors could not be fetched.")
