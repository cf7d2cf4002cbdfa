"""Standard changes (issue 18, rule 18): a template approved once through the full path; its
instances need a peer review and the gate's rules only, and the gate refuses one that leaves the
template (`not_within_template`), read from the real git diff since the template's build."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.actions import AuditAction
from audit.models import AuditEvent
from portal.exceptions import RuleDenied
from registry import services as registry
from registry.builders import AUTHORS, Commit, build_register, repository_with_mirror
from releases.builders import APPROVAL_TEAMS, deploy, policy_amended, release_to_test, sign
from releases.models import SignOffKind
from releases.selectors.standard_changes import path_within
from releases.services.gate import gate_evaluate
from releases.services.standard_changes import (
    standard_change_file,
    standard_template_file,
    standard_template_revoke,
)
from releases.states import Kind, State

pytestmark = pytest.mark.django_db

PIPELINE = "https://ci.example/retrain/"
CHURN_REPOSITORY = "https://git.example.com/data-science/churn"


def _commit(subject: str, path: str, hour: int) -> Commit:
    return Commit(
        author=AUTHORS[0],
        message=subject,
        when=datetime(2026, 11, 2, hour, tzinfo=UTC),
        path=path,
        content=f"{subject}\n",
    )


@pytest.fixture
def churn_builds(org, tmp_path):
    """churn-score (tier 3) built from one repository: 1.0 the template's build; 1.1 new data
    only; 1.2 new data and a configuration; 1.3 a change to the model's code as well."""
    shas = repository_with_mirror(
        tmp_path / "churn",
        [
            _commit("Model code", "src/model.py", 9),
            _commit("November data", "data/2026-11.csv", 10),
            _commit("Tune the threshold", "configs/scoring.yaml", 11),
            _commit("Rewrite the model", "src/model.py", 12),
        ],
        url=CHURN_REPOSITORY,
    )
    registry.model_register(actor=None, name="churn-score", owner_team="data-science", risk_tier=3)
    return {
        number: build_register(
            "churn-score",
            number,
            repository=CHURN_REPOSITORY,
            commit_sha=sha,
            build_url=f"{PIPELINE}{index}",
        )
        for index, (number, sha) in enumerate(zip(["1.0", "1.1", "1.2", "1.3"], shas, strict=True))
    }


def allow_standard_changes(environment, **rules):
    """The environment's policy in force, with standard changes allowed."""
    return policy_amended(environment, standard_changes_allowed=True, **rules)


@pytest.fixture
def template(envs, churn_builds, requester, prod_signers, clock):
    """A retraining template for prod, approved through peer review and the three teams: new
    data and scoring configuration only, for 30 days, twice at most."""
    allow_standard_changes(envs["prod"])
    approval = standard_template_file(
        actor=requester,
        base_version=churn_builds["1.0"],
        environments=[envs["prod"]],
        pipeline=PIPELINE,
        allowed_paths="data/**\nconfigs/*.yaml",
        valid_until=clock.now + timedelta(days=30),
        max_uses=2,
        title="Monthly retraining of churn-score",
        justification="Retrained on the month's data with the same code.",
        rollback_plan="Roll back to the previous version.",
        now=clock.now,
    )
    for signer in prod_signers:
        sign(signer, approval, now=clock.now)
    approval.refresh_from_db()
    assert approval.state == State.APPROVED and approval.kind == Kind.STANDARD_TEMPLATE
    return approval.standard_template


def instance(template, build, envs, requester, peer, clock, ci, *, soak=True):
    """A standard change for `build` in prod, its soak in test done first, peer-reviewed, its
    window open from the clock's now."""
    if soak:
        release_to_test(envs, build, ci.account, clock, requester, peer, pause=timedelta(days=8))
    change = standard_change_file(
        actor=requester,
        template=template,
        model_version=build,
        environment=envs["prod"],
        title=f"Retrain churn-score {build.version}",
        justification="The month's data.",
        rollback_plan="Roll back.",
        window_start=clock.now,
        window_end=clock.now + timedelta(hours=4),
        now=clock.now,
    )
    sign(peer, change, now=clock.now)
    change.refresh_from_db()
    return change


def refusal(answer, code: str) -> str:
    return next(reason.message for reason in answer.reasons if reason.code == code)


def test_globs_allow_only_their_paths():
    globs = ["data/**", "configs/*.yaml"]
    assert path_within("data/2026/11.csv", globs)
    assert path_within("configs/scoring.yaml", globs)
    assert not path_within("configs/old/scoring.yaml", globs)
    assert not path_within("src/model.py", globs)
    assert not path_within("database.py", globs)


def test_a_matching_instance_is_approved_by_its_peer_alone_and_passes_the_gate(
    template, churn_builds, envs, requester, peer, clock, ci
):
    change = instance(template, churn_builds["1.2"], envs, requester, peer, clock, ci)

    assert change.state == State.APPROVED
    assert [s.kind for s in change.sign_offs.all()] == [SignOffKind.PEER_REVIEW]
    assert change.risk_level == "low"
    assert change.template_diff == {
        "known": True,
        "outside": [],
        "note": "2 path(s) changed since churn-score 1.0",
    }
    answer = gate_evaluate(
        environment="prod",
        model="churn-score",
        version="1.2",
        change_request=change,
        now=clock.now + timedelta(minutes=5),
    )
    assert answer.allowed, answer.reasons
    assert "not_within_template" not in answer.codes()


def test_an_instance_whose_commits_touch_code_is_refused_naming_the_path(
    template, churn_builds, envs, requester, peer, clock, ci
):
    change = instance(template, churn_builds["1.3"], envs, requester, peer, clock, ci)

    answer = gate_evaluate(
        environment="prod", model="churn-score", version="1.3", change_request=change, now=clock.now
    )

    assert answer.codes() == ["not_within_template"]
    assert "src/model.py" in answer.reasons[0].message
    assert "outside the template's paths" in answer.reasons[0].message


def test_an_instance_still_needs_its_soak(template, churn_builds, envs, requester, peer, clock, ci):
    change = instance(template, churn_builds["1.1"], envs, requester, peer, clock, ci, soak=False)

    answer = gate_evaluate(
        environment="prod", model="churn-score", version="1.1", change_request=change, now=clock.now
    )

    assert answer.codes() == ["soak_not_met"]


def test_a_revoked_template_refuses_its_approved_instances_and_only_approvers_revoke(
    template, churn_builds, envs, requester, peer, platform_approver, clock, ci
):
    change = instance(template, churn_builds["1.1"], envs, requester, peer, clock, ci)
    with pytest.raises(RuleDenied) as refused:
        standard_template_revoke(actor=requester, template=template, reason="No.")
    assert refused.value.code == "not_allowed_to_revoke"

    standard_template_revoke(
        actor=platform_approver, template=template, reason="The data pipeline changed."
    )

    answer = gate_evaluate(
        environment="prod", model="churn-score", version="1.1", change_request=change, now=clock.now
    )
    assert answer.codes() == ["not_within_template"]
    assert "the template was revoked" in answer.reasons[0].message
    event = AuditEvent.objects.filter(action=AuditAction.STANDARD_TEMPLATE_REVOKED).get()
    assert event.object_id == str(template.pk)
    assert event.data["reason"] == "The data pipeline changed."


def test_an_expired_template_refuses(template, churn_builds, envs, requester, peer, clock, ci):
    change = instance(template, churn_builds["1.1"], envs, requester, peer, clock, ci)

    later = template.valid_until + timedelta(minutes=1)
    answer = gate_evaluate(
        environment="prod", model="churn-score", version="1.1", change_request=change, now=later
    )

    assert "not_within_template" in answer.codes()
    assert "the template expired" in refusal(answer, "not_within_template")


def test_a_used_up_template_refuses_the_next_instance_and_every_use_is_audited(
    template, churn_builds, envs, requester, peer, clock, ci
):
    template.max_uses = 1
    template.save(update_fields=["max_uses"])
    first = instance(template, churn_builds["1.1"], envs, requester, peer, clock, ci)
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=churn_builds["1.1"],
        change_request=first,
        clock=clock,
    )
    second = instance(template, churn_builds["1.2"], envs, requester, peer, clock, ci)

    answer = gate_evaluate(
        environment="prod", model="churn-score", version="1.2", change_request=second, now=clock.now
    )

    assert answer.codes() == ["not_within_template"]
    assert "used 1 of 1 times" in answer.reasons[0].message
    used = AuditEvent.objects.filter(action=AuditAction.STANDARD_TEMPLATE_USED).get()
    assert used.object_id == str(template.pk)
    assert used.data["change_request"] == first.number and used.data["uses"] == 1


def test_the_templates_own_approval_deploys_nothing(template, clock):
    approval = template.change_requests.get(kind=Kind.STANDARD_TEMPLATE)

    answer = gate_evaluate(
        environment="prod",
        model="churn-score",
        version="1.0",
        change_request=approval,
        now=clock.now,
    )

    assert answer.codes() == ["not_within_template"]


def test_an_instance_of_another_model_is_refused_naming_it(
    template, churn_builds, envs, requester, peer, clock, ci
):
    registry.model_register(actor=None, name="churn-lite", owner_team="data-science", risk_tier=3)
    lite = build_register(
        "churn-lite",
        "1.0",
        repository=CHURN_REPOSITORY,
        commit_sha=churn_builds["1.1"].commit_sha,
        build_url=f"{PIPELINE}lite",
    )
    change = instance(template, lite, envs, requester, peer, clock, ci)

    answer = gate_evaluate(
        environment="prod", model="churn-lite", version="1.0", change_request=change, now=clock.now
    )

    assert answer.codes() == ["not_within_template"]
    assert "it is for churn-lite, another model" in refusal(answer, "not_within_template")


def test_where_the_policy_allows_no_standard_changes_none_is_filed(
    envs, churn_builds, requester, template, clock
):
    current = envs["prod"].policies.order_by("-version").first()
    policy_amended(
        envs["prod"], approval_teams=list(current.approval_teams.filter(slug__in=APPROVAL_TEAMS))
    )

    with pytest.raises(RuleDenied) as refused:
        standard_change_file(
            actor=requester,
            template=template,
            model_version=churn_builds["1.1"],
            environment=envs["prod"],
            title="Retrain",
            justification="Data.",
            rollback_plan="Roll back.",
            window_start=clock.now + timedelta(days=1),
            window_end=clock.now + timedelta(days=1, hours=4),
        )
    assert refused.value.code == "standard_changes_not_allowed"
