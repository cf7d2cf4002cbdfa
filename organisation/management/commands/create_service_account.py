from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from organisation import services
from portal.exceptions import DomainError
from portal.models import Team


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create a service account for CI/CD; its token is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. registry:write,gate:read"
        )
        parser.add_argument(
            "--grant-teams",
            default="",
            help="comma-separated slugs of other teams whose models it may also act on",
        )
        parser.add_argument(
            "--environments",
            default="",
            help="comma-separated environment names it is limited to, e.g. dev,test (default: all)",
        )

    def handle(self, *args, name, team, scopes, grant_teams, environments, **options):
        owner = self._team(team)
        try:
            account, issued = services.service_account_create(
                actor=None,
                name=name,
                team=owner,
                scopes=_listed(scopes),
                granted_teams=[self._team(slug) for slug in _listed(grant_teams)],
                environments=_listed(environments),
            )
        except DomainError as error:
            raise CommandError(error.detail) from error
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        teams = [owner.name, *(team.name for team in account.granted_teams.all())]
        self.stdout.write(
            f"Service account '{account.name}' of {owner.name} with scopes "
            f"{', '.join(account.scopes)}, acting on the models of {', '.join(teams)} "
            f"in {', '.join(account.environments) or 'every environment'}. "
            "Store this token now; it is not shown again:"
        )
        self.stdout.write(issued.secret)

    @staticmethod
    def _team(slug: str) -> Team:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise CommandError(f"No team with slug '{slug}'.")
        return team
