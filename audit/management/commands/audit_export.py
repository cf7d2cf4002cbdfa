from datetime import UTC, datetime

from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.export import export_lines


def moment(text: str) -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(text)
        value = datetime(day.year, day.month, day.day)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Export the audit trail as JSON Lines with its checkpoints and public key; check it "
        "anywhere with `python -m audit.offline_verify FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="file to write")
        parser.add_argument("--since", type=moment, help="first moment, ISO 8601")
        parser.add_argument("--until", type=moment, help="last moment, ISO 8601")

    def handle(self, *args, out, since, until, **options):
        events = 0
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            for line in export_lines(since=since, until=until):
                handle.write(line)
                events += line.startswith('{"type":"event"')
        self.stdout.write(f"wrote {events} events to {out}")
