"""Rules that used to be written again in forms, serializers, views and tasks now live in the
services only. Each is asked three ways: the service refuses with its code, the page shows the
service's sentence on the right field, the API answers with the same field error or code."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import ActorKind, AuditEvent
from portal.exceptions import Conflict, RuleDenied
from portal.models import Notification
from registry.builders import build_register
from releases.builders import change_fields, deploy, file_change, release_to_test
from releases.forms import WINDOW_FORMAT, ChangeRequestForm, SignForm
from releases.models import ChangeRequest, Deployment, SignOff
from releases.selectors.rollback import rollback_options
from releases.services import change_requests as services
from releases.services.deployments import deployment_rollback, rollback_plan
from releases.states import Kind, State

pytestmark = pytest.mark.django_db

WINDOW_ORDER = "The window must end after it starts: choose an end after the start."


def reversed_window(version, environment, **overrides):
    fields = change_fields(version, environment, **overrides)
    fields["window_end"] = fields["window_start"] - timedelta(hours=1)
    return fields


def field_codes(error: ValidationError) -> dict[str, list[str]]:
    return {name: [e.code for e in errors] for name, errors in error.error_dict.items()}


class TestTheWindowEndsAfterItStarts:
    def test_the_service_refuses_it_on_window_end(self, requester, envs, version):
        with pytest.raises(ValidationError) as error:
            services.change_request_file(actor=requester, **reversed_window(version, envs["prod"]))
        assert field_codes(error.value) == {"window_end": ["window_order"]}
        assert error.value.message_dict == {"window_end": [WINDOW_ORDER]}
        assert not ChangeRequest.objects.exists()

    def test_editing_is_refused_the_same_way(self, new_change, requester, version):
        change_request = new_change()
        with pytest.raises(ValidationError) as error:
            services.change_request_edit(
                actor=requester,
                change_request=change_request,
                window_end=change_request.window_start,
            )
        assert field_codes(error.value) == {"window_end": ["window_order"]}

    def test_the_form_checks_only_shapes(self, envs, version):
        fields = reversed_window(version, envs["prod"])
        form = ChangeRequestForm(data=form_data(fields))
        assert form.is_valid(), form.errors

    def test_the_page_shows_the_service_sentence_under_window_end(
        self, login, requester, envs, version
    ):
        response = login(requester).post(
            reverse("releases:change-request-new"),
            {**form_data(reversed_window(version, envs["prod"])), "action": "file"},
        )
        assert response.status_code == 400
        form = response.context["form"]
        assert form.errors == {"window_end": [WINDOW_ORDER]}
        assert WINDOW_ORDER in response.content.decode()
        assert not ChangeRequest.objects.exists()

    def test_the_edit_page_shows_it_under_window_end_too(self, login, requester, new_change):
        change_request = new_change()
        fields = {
            name: getattr(change_request, name)
            for name in services.EDITABLE_FIELDS
            if name != "incident_ref"
        }
        fields["window_end"] = fields["window_start"]
        response = login(requester).post(
            reverse("releases:change-request-edit", args=[change_request.number]),
            form_data(fields),
        )
        assert response.status_code == 400
        assert response.context["form"].errors == {"window_end": [WINDOW_ORDER]}

    def test_the_api_answers_400_on_window_end(self, client, login, requester, envs, version):
        fields = reversed_window(version, envs["prod"])
        response = login(requester).post(
            "/api/v1/change-requests/",
            {
                "model": version.model.name,
                "version": version.version,
                "environment": "prod",
                "title": fields["title"],
                "justification": fields["justification"],
                "rollback_plan": fields["rollback_plan"],
                "window_start": fields["window_start"].isoformat(),
                "window_end": fields["window_end"].isoformat(),
            },
            content_type="application/json",
        )
        assert response.status_code == 400
        assert response.json() == {"window_end": [WINDOW_ORDER]}


def form_data(fields: dict) -> dict:
    data = {}
    for name, value in fields.items():
        if hasattr(value, "strftime"):
            value = timezone.localtime(value).strftime(WINDOW_FORMAT)
        elif hasattr(value, "pk"):
            value = value.pk
        data[name] = value
    return data


class TestARejectionSaysWhy:
    def test_the_service_refuses_it_on_comment(self, new_change, peer, password):
        change_request = new_change()
        with pytest.raises(ValidationError) as error:
            services.change_request_sign(
                actor=peer,
                change_request=change_request,
                decision="reject",
                comment="  ",
                password=password,
                content_digest=change_request.content_digest,
            )
        assert field_codes(error.value) == {"comment": ["comment_required"]}
        assert not SignOff.objects.exists()

    def test_the_form_checks_only_shapes(self, new_change):
        form = SignForm(
            data={
                "decision": "reject",
                "comment": "",
                "password": "anything",
                "content_digest": new_change().content_digest,
            }
        )
        assert form.is_valid(), form.errors

    def test_the_page_shows_the_service_sentence_under_comment(
        self, login, peer, password, new_change
    ):
        change_request = new_change()
        response = login(peer).post(
            reverse("releases:change-request-sign", args=[change_request.number]),
            {
                "decision": "reject",
                "comment": "",
                "password": password,
                "content_digest": change_request.content_digest,
            },
        )
        assert response.status_code == 400
        assert response.context["form"].errors == {"comment": ["Say why you reject."]}
        assert not SignOff.objects.exists()


@pytest.fixture
def emergency(envs, requester, change_manager, ci, clock):
    build = build_register("payments", "9.9")
    change = file_change(
        model_version=build,
        environment=envs["prod"],
        requester=requester,
        signers=[change_manager],
        kind=Kind.EMERGENCY,
    )
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=build,
        change_request=change,
        clock=clock,
    )
    change.refresh_from_db()
    assert change.state == State.RETRO_REVIEW
    return change


class TestTheRetrospectiveEscalation:
    def test_the_service_tells_once_and_records_the_overdue_stage(self, emergency, change_manager):
        due = emergency.retrospective_due_at
        escalations = AuditEvent.objects.filter(
            action=AuditAction.CHANGE_REQUEST_RETROSPECTIVE_ESCALATED
        )
        soon = services.change_request_retrospective_escalate(
            actor=None, change_request=emergency, now=due - timedelta(hours=1)
        )
        assert change_manager in [n.recipient for n in soon]
        assert not escalations.exists()

        late = services.change_request_retrospective_escalate(
            actor=None, change_request=emergency, now=due + timedelta(minutes=1)
        )
        assert change_manager in [n.recipient for n in late]
        event = escalations.get()
        assert event.actor_kind == ActorKind.SYSTEM
        assert event.object_id == str(emergency.pk)
        assert "changemgr" in event.data["told"]

        again = services.change_request_retrospective_escalate(
            actor=None, change_request=emergency, now=due + timedelta(hours=2)
        )
        assert again == [] and escalations.count() == 1
        assert Notification.objects.filter(recipient=change_manager).count() >= 2

    def test_too_early_or_without_a_retrospective_is_refused(self, emergency, new_change):
        with pytest.raises(Conflict) as early:
            services.change_request_retrospective_escalate(
                actor=None,
                change_request=emergency,
                now=emergency.retrospective_due_at - timedelta(days=2),
            )
        assert early.value.code == "retrospective_not_due"
        with pytest.raises(Conflict) as normal:
            services.change_request_retrospective_escalate(actor=None, change_request=new_change())
        assert normal.value.code == "no_retrospective_due"


@pytest.mark.parametrize("hours", [-1, 1], ids=["overdue", "not yet due"])
def test_the_pages_flag_an_overdue_retrospective_when_the_service_does(
    hours, emergency, envs, requester, login
):
    """The pages flag an overdue retrospective exactly when the service refuses the model's next
    emergency change for it."""
    ChangeRequest.objects.filter(pk=emergency.pk).update(
        retrospective_due_at=timezone.now() + timedelta(hours=hours)
    )
    client = login(requester)
    change_page = client.get(f"/releases/change-requests/{emergency.number}/").content.decode()
    environment_page = client.get("/releases/environments/prod/").content.decode()
    try:
        services.change_request_file(
            actor=requester,
            kind=Kind.EMERGENCY,
            **change_fields(
                emergency.model_version,
                envs["prod"],
                window_start=None,
                window_end=None,
                incident_ref="INC-2",
            ),
        )
        refused = False
    except RuleDenied as error:
        assert error.code == "retrospective_overdue"
        refused = True
    assert ('<span class="badge bad">Overdue</span>' in change_page) is refused
    assert ('<span class="badge bad">overdue</span>' in environment_page) is refused


class TestTheRollbackTarget:
    """After a rollback, the version it replaced is not a way back: the page offers no rollback
    and the service and the API refuse it with the same code."""

    @pytest.fixture
    def rolled_back(self, envs, builds, ci, clock, requester, peer, fraud):
        release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
        release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer)
        return deployment_rollback(
            actor=requester, environment=envs["test"], model=fraud, reason="Scores drift."
        )

    def test_the_service_refuses(self, rolled_back, requester, envs, fraud):
        with pytest.raises(Conflict) as error:
            deployment_rollback(
                actor=requester, environment=envs["test"], model=fraud, reason="Again."
            )
        assert error.value.code == "no_previous_version"

    def test_the_page_offers_no_rollback(self, rolled_back, login, requester):
        page = login(requester).get("/releases/environments/test/").content.decode()
        assert "fraud-score" in page and "Roll back</button>" not in page

    def test_the_api_answers_409_with_the_code(self, rolled_back, ci):
        response = ci.client().post(
            "/api/v1/environments/test/models/fraud-score/rollback/",
            {"reason": "Again."},
            format="json",
        )
        assert response.status_code == 409
        assert response.json()["code"] == "no_previous_version"
        assert Deployment.objects.filter(kind="rollback").count() == 1

    def test_a_failed_attempt_after_a_rollback_can_be_rolled_back(
        self, rolled_back, envs, builds, ci, clock, requester, peer, login
    ):
        release_to_test(envs, builds["1.2"], ci.account, clock, requester, peer, succeed=False)
        page = login(requester).get("/releases/environments/test/").content.decode()
        assert "Roll back</button>" in page
        again = deployment_rollback(
            actor=requester, environment=envs["test"], model="fraud-score", reason="Half done."
        )
        assert again.model_version == builds["1.0"]


HISTORIES = [
    ["ok:1.0"],
    ["ok:1.0", "ok:1.1"],
    ["ok:1.0", "ok:1.1", "rollback"],
    ["ok:1.0", "fail:1.1"],
    ["ok:1.0", "ok:1.1", "ok:1.2", "rollback"],
    ["ok:1.0", "ok:1.1", "ok:1.2", "rollback", "rollback"],
    ["ok:1.0", "ok:1.1", "ok:1.0"],
    ["ok:1.0", "ok:1.1", "ok:1.1"],
    ["ok:1.0", "ok:1.1", "rollback", "fail:1.2"],
    # Longer than the page's one-query walk (WALK): the rest is read for that model alone.
    ["ok:1.0", *["ok:1.1", "rollback"] * 4],
    ["ok:1.0", *["ok:1.1", "rollback"] * 4, "ok:1.2"],
]


@pytest.mark.parametrize("steps", HISTORIES, ids=[" ".join(h) for h in HISTORIES])
def test_the_page_and_the_service_find_the_same_rollback_target(
    steps, envs, builds, ci, clock, requester, peer, fraud
):
    """The environment page's selector for all models and the service's walk for one model are
    one rule, written twice (SQL and Python): they must agree on every history."""
    for step in steps:
        if step == "rollback":
            deployment_rollback(
                actor=requester, environment=envs["test"], model=fraud, reason="r", now=clock.now
            )
            clock.advance(hours=1)
            continue
        outcome, number = step.split(":")
        release_to_test(
            envs, builds[number], ci.account, clock, requester, peer, succeed=outcome == "ok"
        )
    try:
        replaced, target = rollback_plan(environment=envs["test"], model=fraud)
        expected = (replaced.pk, target.pk)
    except Conflict:
        expected = None
    option = rollback_options(environment=envs["test"])[fraud.pk]
    assert ((option.replaced.pk, option.target_id) if option.possible else None) == expected


def test_a_page_refusal_keeps_other_fields_error_free(login, requester, envs, version):
    """A rule's denial (not about a field) shows above the form with the service's status."""
    fields = change_fields(version, envs["dev"])
    response = login(requester).post(
        reverse("releases:change-request-new"), {**form_data(fields), "action": "file"}
    )
    assert response.status_code == 403
    form = response.context["form"]
    assert form.non_field_errors() == [
        "dev needs no change request: its policy lets CI deploy there without one, so nothing "
        "needs filing: the pipeline deploys the build."
    ]
    assert all(not form[name].errors for name in form.fields)


def test_a_token_is_told_the_rule_before_its_payload_is_read(ci):
    """People file change requests (the service's `people_only`), asked before validation."""
    response = ci.client().post("/api/v1/change-requests/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "people_only"
