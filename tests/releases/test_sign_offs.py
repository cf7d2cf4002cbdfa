"""Sign-offs: rules 2, 3, 4, 5, 6 and 13, each allowed once and denied with its code."""

import pytest
from django.core.exceptions import ValidationError
from git import Actor

from audit.models import AuditEvent
from organisation import services as org_services
from portal.exceptions import Conflict, RuleDenied
from portal.models import Notification
from registry.builders import (
    build_register,
    digest,
    repository_with_mirror,
    training_commits,
)
from releases.builders import change_fields, deployment_row, sign
from releases.models import SignOff
from releases.services import change_requests as services
from releases.services import policy
from releases.states import State

pytestmark = pytest.mark.django_db


def denied(call, code, kind=RuleDenied):
    with pytest.raises(kind) as error:
        call()
    assert error.value.code == code
    return error.value


def test_peer_review_then_one_approval_per_team_then_approved(
    new_change, peer, model_risk_approver, release_approver, platform_approver
):
    change_request = new_change()
    review = sign(peer, change_request)
    assert review.kind == "peer_review" and review.team.slug == "data-science"
    change_request.refresh_from_db()
    assert change_request.state == State.IN_APPROVAL
    for signer in (model_risk_approver, release_approver):
        sign(signer, change_request)
        change_request.refresh_from_db()
        assert change_request.state == State.IN_APPROVAL
    last = sign(platform_approver, change_request)
    change_request.refresh_from_db()
    assert change_request.state == State.APPROVED
    assert last.team.slug == "platform-operations"
    assert last.reauthenticated is True
    assert last.policy.version == 1
    assert last.content_digest == change_request.content_digest
    assert last.meaning == (
        f"I approve {change_request.number} for prod on behalf of Platform Operations"
    )


def test_test_environment_needs_only_the_peer_review(new_change, peer):
    change_request = new_change("test")
    sign(peer, change_request)
    change_request.refresh_from_db()
    assert change_request.state == State.APPROVED


def test_approvers_wait_for_the_peer_review(new_change, model_risk_approver):
    change_request = new_change()
    # In peer review only a member of the requester's team can sign.
    denied(lambda: sign(model_risk_approver, change_request), "not_a_peer")


def test_peer_review_by_someone_outside_the_team_is_refused(org, new_change, model_risk_approver):
    change_request = new_change()
    denied(lambda: sign(model_risk_approver, change_request), "not_a_peer")
    org_services.membership_set(actor=None, user=model_risk_approver, team=org["data-science"])
    assert sign(model_risk_approver, change_request).kind == "peer_review"


def test_nobody_signs_their_own_change(new_change, requester, peer):
    change_request = new_change()
    denied(lambda: sign(requester, change_request), "own_change")
    sign(peer, change_request)
    denied(lambda: sign(requester, change_request), "own_change")


def test_one_sign_off_per_person_even_for_another_team(
    org, new_change, peer, model_risk_approver, release_approver
):
    org_services.membership_set(
        actor=None, user=model_risk_approver, team=org["release-management"], is_approver=True
    )
    change_request = new_change()
    sign(peer, change_request)
    sign(model_risk_approver, change_request, team=org["model-risk"])
    error = denied(
        lambda: sign(model_risk_approver, change_request, team=org["release-management"]),
        "already_signed",
    )
    assert "one sign-off per person" in error.detail
    assert sign(release_approver, change_request).team == org["release-management"]


def test_the_peer_reviewer_cannot_also_approve(org, new_change, peer):
    org_services.membership_set(actor=None, user=peer, team=org["model-risk"], is_approver=True)
    change_request = new_change()
    sign(peer, change_request)
    denied(lambda: sign(peer, change_request, team=org["model-risk"]), "already_signed")


def test_the_approver_role_is_checked_at_the_moment_of_signing(
    org, new_change, peer, model_risk_approver
):
    change_request = new_change()
    sign(peer, change_request)
    org_services.membership_set(
        actor=None, user=model_risk_approver, team=org["model-risk"], is_approver=False
    )
    denied(lambda: sign(model_risk_approver, change_request), "not_an_approver")
    org_services.membership_set(
        actor=None, user=model_risk_approver, team=org["model-risk"], is_approver=True
    )
    assert sign(model_risk_approver, change_request).team == org["model-risk"]


def test_a_non_approver_cannot_sign_for_a_team(org, new_change, peer, auditor):
    change_request = new_change()
    sign(peer, change_request)
    denied(lambda: sign(auditor, change_request, team=org["model-risk"]), "not_an_approver")
    denied(lambda: sign(auditor, change_request), "not_an_approver")


def test_a_team_outside_the_policy_or_already_signed_is_refused(
    org, new_change, peer, model_risk_approver
):
    change_request = new_change()
    sign(peer, change_request)
    denied(
        lambda: sign(model_risk_approver, change_request, team=org["data-science"]),
        "team_not_required",
    )
    sign(model_risk_approver, change_request)
    denied(
        lambda: sign(model_risk_approver, change_request, team=org["model-risk"]),
        "team_already_signed",
        Conflict,
    )


def test_any_rejection_ends_the_request(new_change, peer, model_risk_approver):
    change_request = new_change()
    sign(peer, change_request)
    rejection = sign(model_risk_approver, change_request, decision="reject", comment="No backtest")
    change_request.refresh_from_db()
    assert change_request.state == State.REJECTED
    assert rejection.meaning.startswith(f"I reject {change_request.number} for prod")
    denied(lambda: sign(peer, change_request), "invalid_transition", Conflict)


def test_a_rejection_needs_a_reason(new_change, peer, password):
    change_request = new_change()
    with pytest.raises(ValidationError) as error:
        sign(peer, change_request, decision="reject", comment=" ")
    assert error.value.error_dict["comment"][0].code == "comment_required"


def test_a_wrong_password_signs_nothing(new_change, peer):
    change_request = new_change()
    denied(lambda: sign(peer, change_request, password="guess"), "reauth_failed")
    assert not SignOff.objects.filter(change_request=change_request).exists()


def test_a_sign_off_binds_to_the_content_the_signer_saw(new_change, peer):
    change_request = new_change()
    denied(
        lambda: sign(peer, change_request, content_digest=digest("older content")),
        "content_changed",
        Conflict,
    )
    assert sign(peer, change_request).content_digest == change_request.content_digest


def test_the_audit_event_carries_meaning_digest_policy_version_and_no_password(
    new_change, peer, password
):
    change_request = new_change()
    sign_off = sign(peer, change_request)
    event = AuditEvent.objects.filter(action="change_request.signed").order_by("-seq")[0]
    assert event.data["meaning"] == sign_off.meaning
    assert event.data["content_digest"] == change_request.content_digest
    assert event.data["policy_version"] == 1
    assert event.data["reauthenticated"] is True
    assert event.data["state_after"] == State.IN_APPROVAL
    assert password not in event.body


def test_a_sign_off_records_the_policy_version_in_force_when_given(
    org, envs, new_change, peer, model_risk_approver
):
    change_request = new_change()
    sign(peer, change_request)
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=[org["model-risk"]],
        soak_source=envs["test"],
        soak_days=7,
    )
    sign_off = sign(model_risk_approver, change_request)
    assert sign_off.policy.version == 2
    change_request.refresh_from_db()
    # Version 2 asks for Model Risk only, so that one signature completes the request.
    assert change_request.state == State.APPROVED


class TestCommitAuthors:
    """Rule 4, last part: with `exclude_commit_authors`, nobody who wrote a commit between what
    is live and the candidate signs."""

    @pytest.fixture
    def release(self, org, envs, tmp_path, requester, peer, model_risk_approver):
        peer.email = "per@bank.example"
        peer.save(update_fields=["email"])
        authors = [
            Actor("Rhea Quinn", "rhea@bank.example"),
            Actor("Per Eriksen", "PER@bank.example"),
        ]
        shas = repository_with_mirror(tmp_path / "src", training_commits(2, authors=authors))
        version = build_register("fraud-detector", "2.0.0", commit_sha=shas[-1])
        policy.environment_policy_change(
            actor=None,
            environment=envs["test"],
            approval_teams=[],
            exclude_commit_authors=True,
        )
        return version

    def test_a_commit_author_may_not_sign(self, org, release, envs, requester, peer):
        change_request = services.change_request_file(
            actor=requester, **change_fields(release, envs["test"])
        )
        denied(lambda: sign(peer, change_request), "commit_author")

    def test_someone_who_wrote_no_commit_may_sign(
        self, org, release, envs, requester, model_risk_approver
    ):
        org_services.membership_set(actor=None, user=model_risk_approver, team=org["data-science"])
        change_request = services.change_request_file(
            actor=requester, **change_fields(release, envs["test"])
        )
        assert sign(model_risk_approver, change_request).kind == "peer_review"

    def test_commits_already_live_do_not_count(self, org, envs, tmp_path, requester, peer):
        peer.email = "per@bank.example"
        peer.save(update_fields=["email"])
        authors = [
            Actor("Per Eriksen", "per@bank.example"),
            Actor("Rhea Quinn", "rhea@bank.example"),
        ]
        shas = repository_with_mirror(tmp_path / "src", training_commits(2, authors=authors))
        live = build_register("fraud-detector", "4.0.0", commit_sha=shas[0])
        candidate = build_register("fraud-detector", "4.1.0", commit_sha=shas[1])
        deployment_row(environment=envs["test"], model_version=live)
        policy.environment_policy_change(
            actor=None, environment=envs["test"], approval_teams=[], exclude_commit_authors=True
        )
        change_request = services.change_request_file(
            actor=requester, **change_fields(candidate, envs["test"])
        )
        # Per's commit is already live there; only Rhea's is in this release.
        assert sign(peer, change_request).kind == "peer_review"

    def test_unknown_commits_refuse_rather_than_guess(self, org, envs, requester, peer):
        policy.environment_policy_change(
            actor=None, environment=envs["test"], approval_teams=[], exclude_commit_authors=True
        )
        version = build_register("fraud-detector", "3.0.0")
        change_request = services.change_request_file(
            actor=requester, **change_fields(version, envs["test"])
        )
        denied(lambda: sign(peer, change_request), "commits_unknown")


def test_the_next_signers_and_the_requester_are_told(new_change, peer, requester):
    change_request = new_change()
    waiting = Notification.objects.filter(key__startswith=f"cr:{change_request.pk}:waiting")
    assert set(waiting.values_list("recipient__username", flat=True)) == {"peer"}
    sign(peer, change_request)
    assert Notification.objects.filter(recipient=requester, key__startswith="signoff:").exists()
    assert {"risk", "release", "platform"} <= set(
        waiting.values_list("recipient__username", flat=True)
    )


def test_wrong_passwords_are_recorded_and_repeated_ones_lock_signing(
    new_change, peer, model_risk_approver, org
):
    change_request = new_change()
    for attempt in range(services.REAUTH_LIMIT):
        guess = f"guess-{attempt}"
        denied(lambda guess=guess: sign(peer, change_request, password=guess), "reauth_failed")
    failures = AuditEvent.objects.filter(action="change_request.reauth_failed", actor_name="peer")
    assert failures.count() == services.REAUTH_LIMIT
    assert all("guess" not in event.body for event in failures)
    denied(lambda: sign(peer, change_request), "reauth_locked")
    assert not SignOff.objects.filter(change_request=change_request).exists()
    org_services.membership_set(actor=None, user=model_risk_approver, team=org["data-science"])
    assert sign(model_risk_approver, change_request).kind == "peer_review"
