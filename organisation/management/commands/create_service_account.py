from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from organisation import services
from portal.exceptions import DomainError
from portal.models import Team


class Command(BaseCommand):
    help = "Create a service account for CI/CD; its token is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. registry:write,gate:read"
        )

    def handle(self, *args, name, team, scopes, **options):
        owner = Team.objects.filter(slug=team).first()
        if owner is None:
            raise CommandError(f"No team with slug '{team}'.")
        try:
            account, issued = services.service_account_create(
                actor=None,
                name=name,
                team=owner,
                scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
            )
        except DomainError as error:
            raise CommandError(error.detail) from error
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(
            f"Service account '{account.name}' of {owner.name} with scopes "
            f"{', '.join(account.scopes)}. Store this token now; it is not shown again:"
        )
        self.stdout.write(issued.secret)
