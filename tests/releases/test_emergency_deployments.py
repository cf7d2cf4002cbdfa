"""Rule 11 end to end, through the change request services, the API and the pages: an
emergency change skips the soak, starts its retrospective clock when deployed, is flagged when
the retrospective is overdue, and blocks the model's next emergency until it is done."""

from datetime import timedelta

import pytest

from portal.exceptions import RuleDenied
from releases.builders import file_change, sign
from releases.states import State

pytestmark = pytest.mark.django_db


def test_emergency_path(
    envs,
    builds,
    ci,
    django_clock,
    login,
    requester,
    change_manager,
    model_risk_approver,
    release_approver,
    platform_approver,
    auditor,
):
    clock, pipeline = django_clock, ci.client()

    def gate(version: str, environment: str = "prod") -> dict:
        response = pipeline.post(
            "/api/v1/gate/",
            {"environment": environment, "model": "fraud-score", "version": version},
        )
        assert response.status_code == 200
        return response.json()

    def codes(answer: dict, key: str = "reasons") -> list[str]:
        return [reason["code"] for reason in answer[key]]

    def file_emergency(version: str):
        return file_change(
            model_version=builds[version],
            environment=envs["prod"],
            requester=requester,
            kind="emergency",
        )

    # Filed, not yet authorised: the gate names it. 1.1 never ran in test.
    emergency = file_emergency("1.1")
    assert emergency.state == State.AWAITING_AUTHORISATION
    assert codes(gate("1.1")) == ["emergency_not_authorised"]

    # Authorised by the change manager: the soak is skipped.
    sign(change_manager, emergency)
    answer = gate("1.1")
    assert answer["allowed"] is True and answer["change_request"] == emergency.number
    assert answer["soak"] is None

    started = pipeline.post(
        "/api/v1/deployments/",
        {"environment": "prod", "model": "fraud-score", "version": "1.1"},
    )
    assert started.status_code == 201
    clock.advance(minutes=10)
    deployed_at = clock.now
    result = pipeline.post(
        f"/api/v1/deployments/{started.json()['id']}/result/", {"status": "succeeded"}
    )
    assert result.status_code == 200
    emergency.refresh_from_db()
    assert emergency.state == State.RETRO_REVIEW
    assert emergency.retrospective_due_at == deployed_at + timedelta(hours=72)

    # The retrospective clock runs; one team signs in time.
    clock.advance(hours=1)
    sign(model_risk_approver, emergency)
    page = login(auditor).get("/releases/environments/prod/").content.decode()
    assert emergency.number in page and "overdue" not in page
    assert emergency.retrospective_due_at.strftime("%Y-%m-%d %H:%M") in page

    # A second emergency for the model, filed and authorised before the deadline.
    clock.now = deployed_at + timedelta(hours=71)
    second = file_emergency("1.2")
    sign(change_manager, second)
    assert gate("1.2")["allowed"] is True

    # The deadline passes with two teams still owing their review.
    clock.now = deployed_at + timedelta(hours=73)
    blocked = gate("1.2")
    assert codes(blocked) == ["retrospective_overdue"]
    assert emergency.number in blocked["reasons"][0]["message"]
    refused = pipeline.post(
        "/api/v1/deployments/",
        {"environment": "prod", "model": "fraud-score", "version": "1.2"},
    )
    assert refused.status_code == 403
    assert codes(refused.json()) == ["retrospective_overdue"]
    # Other deployments of the model carry the flag.
    flagged = gate("1.0", environment="dev")
    assert flagged["allowed"] is True and codes(flagged, "warnings") == ["retrospective_overdue"]
    # The pages flag it.
    client = login(auditor)
    assert "overdue" in client.get("/releases/environments/prod/").content.decode()
    assert "1 retrospective overdue" in client.get("/releases/environments/").content.decode()
    # No new emergency change for the model while one is overdue.
    with pytest.raises(RuleDenied) as error:
        file_emergency("1.0")
    assert error.value.code == "retrospective_overdue"

    # Once every team has signed, the change closes and the block lifts.
    sign(release_approver, emergency)
    sign(platform_approver, emergency)
    emergency.refresh_from_db()
    assert emergency.state == State.CLOSED
    assert gate("1.0", environment="dev")["warnings"] == []
    assert gate("1.2")["allowed"] is True
    assert file_emergency("1.0").state == State.AWAITING_AUTHORISATION
