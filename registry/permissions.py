"""Rule 15, least privilege for machines: a service token acts only on the models of its own team
and of the teams an administrator granted it. The registry asks before it registers a model or a
build; `releases.permissions` asks the same function before a deployment, a result or a rollback,
so the rule has this one home. Model Risk's tokens are judged here too. People are judged by
their own rules, not here."""

from typing import Any

from django.conf import settings

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


def token_model_risk_denial(actor: Any, *, model: Any) -> RuleDenied | None:
    """Why a token may not do Model Risk's work on `model` (open a validation, record a finding,
    mark one remediated), or None. It acts for Model Risk (its own team or a granted one) and
    not for the model's owner team: the owners' pipeline never grades their own model."""
    if not is_service_account(actor):
        return None
    model_risk = Team.objects.filter(slug=settings.GATEHOUSE_MODEL_RISK_TEAM).first()
    if model_risk is None or not actor.acts_for_team(model_risk.pk):
        return RuleDenied(
            f"Validations and findings are Model Risk's work; the token of '{actor.name}' does "
            "not act for Model Risk. An administrator may grant it Model Risk.",
            code="token_wrong_team",
        )
    if actor.acts_for_team(model.owner_team_id):
        return RuleDenied(
            f"The token of '{actor.name}' also acts for {model.owner_team.name}, which owns "
            f"{model.name}: Model Risk's work on it is independent of its owners.",
            code="token_not_independent",
        )
    return None
