"""The deployment side of a change request, for its page and its filing form: the gate's
current answer, the soak evidence and the earliest date the soak rule holds (rules 7 to 9)."""

from django import template
from django.utils import timezone

from releases.models import ChangeRequest, DeploymentKind, Environment
from releases.selectors.gate import gate_question_resolve
from releases.services.gate import gate_judge

register = template.Library()


@register.inclusion_tag("releases/deployment_gate_panel.html")
def deployment_gate(change_request=None, model_version=None, environment=None) -> dict:
    """With a change request: what the gate would answer for it now (nothing is recorded). With
    a build and an environment (the filing form): the soak evidence alone."""
    now = timezone.now()
    if isinstance(change_request, ChangeRequest):
        answer = gate_judge(
            gate_question_resolve(
                environment=change_request.environment,
                model=change_request.model_version.model,
                version=change_request.model_version.version,
                change_request=change_request,
                now=now,
            )
        )
        attempts = change_request.deployments.filter(kind=DeploymentKind.DEPLOY).order_by("pk")
        return {
            "answer": answer,
            "soak": answer.soak,
            "policy": answer.policy,
            "attempts": list(attempts),
            "now": now,
        }
    if model_version and isinstance(environment, Environment):
        question = gate_question_resolve(
            environment=environment,
            model=model_version.model,
            version=model_version.version,
            now=now,
        )
        return {
            "answer": None,
            "soak": question.soak,
            "policy": question.policy,
            "attempts": [],
            "now": now,
        }
    return {"answer": None, "soak": None, "policy": None, "attempts": [], "now": now}
