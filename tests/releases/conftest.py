import pytest

from releases.services import change_requests as services
from tests.releases import helpers


@pytest.fixture
def envs(org):
    return helpers.make_environments(org)


@pytest.fixture
def version(org):
    return helpers.make_model_version(org)


@pytest.fixture
def file_change(requester, envs, version):
    """File (create and submit) a change request as the requester; prod by default."""

    def file(environment: str = "prod", actor=None, **overrides):
        fields = helpers.change_fields(version, envs[environment], **overrides)
        return services.change_request_file(actor=actor or requester, **fields)

    return file


@pytest.fixture
def sign(password):
    """Sign with the persona's real password and the digest they are shown."""

    def do(actor, change_request, decision="approve", team=None, comment="", **extra):
        change_request.refresh_from_db()
        return services.change_request_sign(
            actor=actor,
            change_request=change_request,
            decision=decision,
            comment=comment or ("Looks wrong." if decision == "reject" else ""),
            team=team,
            password=extra.pop("password", password),
            content_digest=extra.pop("content_digest", change_request.content_digest),
        )

    return do


@pytest.fixture
def approved(file_change, sign, peer, model_risk_approver, release_approver, platform_approver):
    """A prod change that went through peer review and all three teams."""
    change_request = file_change()
    for signer in (peer, model_risk_approver, release_approver, platform_approver):
        sign(signer, change_request)
    change_request.refresh_from_db()
    return change_request
