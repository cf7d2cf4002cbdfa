"""Rule 15, least privilege for machines: a service token acts only on the models of its own team
and of the teams an administrator granted it. The registry asks before it registers a model or a
build; `releases.permissions` asks the same function before a deployment, a result or a rollback,
so the rule has this one home. People are judged by their own rules, not here."""

from typing import Any

from portal.authentication import is_service_account
from portal.exceptions import RuleDenied
from portal.models import Team


def token_team_denial(actor: Any, *, team_id: int, subject: str) -> RuleDenied | None:
    """Why a token may not write for `subject` (a model, named for the message) of the team
    `team_id`, or None. Asking the gate is reading and stays open; this guards writes."""
    if not is_service_account(actor) or actor.acts_for_team(team_id):
        return None
    owner = Team.objects.get(pk=team_id).name
    reach = [actor.team.name, *actor.granted_teams.order_by("name").values_list("name", flat=True)]
    return RuleDenied(
        f"{subject} belongs to {owner}; the token of '{actor.name}' acts only on the models of "
        f"{', '.join(reach)}. An administrator may grant it {owner}.",
        code="token_wrong_team",
    )
