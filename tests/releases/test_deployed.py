"""The hand-over to the deployment side: what a successful deployment or a rollback does to the
change request."""

import pytest

from portal.exceptions import Conflict
from releases.builders import deployment_row
from releases.models import DeploymentKind
from releases.services import change_requests as services
from releases.states import State

pytestmark = pytest.mark.django_db


def deployment_of(change_request, kind=DeploymentKind.DEPLOY):
    return deployment_row(
        environment=change_request.environment,
        model_version=change_request.model_version,
        change_request=change_request,
        kind=kind,
    )


def test_an_approved_change_becomes_deployed_once(approved, ci):
    deployment = deployment_of(approved)
    deployed = services.change_request_mark_deployed(
        change_request=approved, deployment=deployment, actor=ci.account
    )
    assert deployed.state == State.DEPLOYED
    assert deployed.retrospective_due_at is None
    with pytest.raises(Conflict) as error:
        services.change_request_mark_deployed(change_request=approved, deployment=deployment)
    assert error.value.code == "invalid_transition"


def test_a_change_not_yet_approved_cannot_be_deployed(new_change):
    change_request = new_change()
    with pytest.raises(Conflict) as error:
        services.change_request_mark_deployed(
            change_request=change_request, deployment=deployment_of(change_request)
        )
    assert error.value.code == "invalid_transition"


def test_a_rolled_back_deployment_marks_the_change_rolled_back(approved):
    deployment = deployment_of(approved)
    services.change_request_mark_deployed(change_request=approved, deployment=deployment)
    rolled_back = services.change_request_mark_rolled_back(
        change_request=approved, deployment=deployment_of(approved, DeploymentKind.ROLLBACK)
    )
    assert rolled_back.state == State.ROLLED_BACK
