from django.core.management.base import BaseCommand, CommandError

from integrations.mlflow_source import MlflowUnreachable, mlflow_import


class Command(BaseCommand):
    help = (
        "Read the MLflow Model Registry at GATEHOUSE_MLFLOW_TRACKING_URI (or --tracking-uri) now: "
        "register its new versions in Gatehouse and flag aliases and stages moved outside "
        "Gatehouse (what the periodic task does). Prints what was imported and what was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tracking-uri", default="", help="Overrides the setting.")

    def handle(self, *args, tracking_uri: str, **options):
        try:
            report = mlflow_import(tracking_uri=tracking_uri)
        except MlflowUnreachable as unreachable:
            raise CommandError(f"{unreachable} Nothing was imported.") from unreachable
        for line in report.lines():
            self.stdout.write(line)
