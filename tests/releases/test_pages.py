"""The change request pages, and separation of duties when the buttons are bypassed."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from git import Actor

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from organisation import services as org_services
from registry.builders import (
    build_register,
    digest,
    repository_with_mirror,
    training_commits,
)
from releases.builders import sign
from releases.models import ChangeRequest, SignOff
from releases.services import policy
from releases.states import State

pytestmark = pytest.mark.django_db
FORMAT = "%Y-%m-%dT%H:%M"


def url(change_request, suffix=""):
    return f"/releases/change-requests/{change_request.number}/{suffix}"


def sign_post(client, change_request, password, team="", **overrides):
    data = {
        "decision": "approve",
        "comment": "",
        "password": password,
        "content_digest": change_request.content_digest,
        "team": team,
        **overrides,
    }
    return client.post(url(change_request, "sign/"), data)


def form_data(version, environment=None, **overrides):
    start = timezone.now() + timedelta(days=2)
    end = start + timedelta(hours=4)
    data = {
        "model_version": version.pk,
        "environment": environment.pk if environment else "",
        "title": "Release 1.0.0",
        "justification": "Better recall.",
        "risk_impact": "Low.",
        "test_evidence": "Backtest.",
        "rollback_plan": "Roll back.",
        "window_start": start.strftime(FORMAT),
        "window_end": end.strftime(FORMAT),
        "action": "file",
    }
    return {**data, **overrides}


class TestFiling:
    def test_the_form_files_a_request(self, login, requester, envs, version):
        client = login(requester)
        assert client.get("/releases/change-requests/new/").status_code == 200
        response = client.post(
            "/releases/change-requests/new/", form_data(version, environment=envs["prod"])
        )
        change_request = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == url(change_request)
        assert change_request.state == State.IN_REVIEW
        assert change_request.requester == requester

    def test_a_draft_is_kept_as_draft(self, login, requester, envs, version):
        login(requester).post(
            "/releases/change-requests/new/",
            form_data(version, environment=envs["prod"], action="draft"),
        )
        assert ChangeRequest.objects.get().state == State.DRAFT

    def test_a_refusal_is_shown_on_the_form(self, login, requester, envs, version):
        start = timezone.now() + timedelta(days=2)
        policy.freeze_window_create(
            actor=None,
            environment=envs["prod"],
            starts_at=start - timedelta(days=1),
            ends_at=start + timedelta(days=1),
            reason="Year-end close",
        )
        response = login(requester).post(
            "/releases/change-requests/new/", form_data(version, environment=envs["prod"])
        )
        assert response.status_code == 403
        assert b"Year-end close" in response.content
        assert not ChangeRequest.objects.exists()

    def test_the_form_shows_the_commits_the_build_brings(
        self, org, login, requester, envs, tmp_path
    ):
        authors = [Actor("Mia Chen", "mia@bank.example"), Actor("Per Eriksen", "per@bank.ex")]
        shas = repository_with_mirror(tmp_path / "src", training_commits(2, authors=authors))
        version = build_register("fraud-detector", "2.0.0", commit_sha=shas[-1])
        response = login(requester).post(
            "/releases/change-requests/new/",
            form_data(version, environment=envs["prod"], action="preview"),
        )
        assert response.status_code == 200
        assert shas[0][:10].encode() in response.content
        assert b"Mia Chen" in response.content
        assert not ChangeRequest.objects.exists()

    def test_an_emergency_is_filed_from_its_form(self, login, requester, envs, version):
        response = login(requester).post(
            "/releases/emergencies/new/",
            {
                "model_version": version.pk,
                "environment": envs["prod"].pk,
                "incident_ref": "INC-9",
                "title": "Hotfix",
                "justification": "Losses.",
                "rollback_plan": "Roll back.",
                "action": "file",
            },
        )
        assert response.status_code == 302
        assert ChangeRequest.objects.get().state == State.AWAITING_AUTHORISATION


class TestButtons:
    def test_the_requester_sees_edit_and_cancel_but_no_signature(
        self, login, requester, new_change
    ):
        change_request = new_change()
        page = login(requester).get(url(change_request)).content.decode()
        assert url(change_request, "edit/") in page
        assert url(change_request, "cancel/") in page
        assert url(change_request, "sign/") not in page

    def test_the_peer_sees_the_peer_review_button_only(self, login, peer, new_change):
        change_request = new_change()
        page = login(peer).get(url(change_request)).content.decode()
        assert "Sign: Peer review (Data Science)" in page
        assert url(change_request, "edit/") not in page

    def test_approvers_see_their_team_once_the_peer_has_reviewed(
        self, login, peer, model_risk_approver, new_change
    ):
        change_request = new_change()
        client = login(model_risk_approver)
        assert url(change_request, "sign/") not in client.get(url(change_request)).content.decode()
        sign(peer, change_request)
        page = client.get(url(change_request)).content.decode()
        assert f"{url(change_request, 'sign/')}?team=model-risk" in page
        assert "team=release-management" not in page


class TestSigning:
    def test_the_sign_form_shows_the_meaning_and_asks_the_password(self, login, peer, new_change):
        change_request = new_change()
        page = login(peer).get(url(change_request, "sign/")).content.decode()
        assert (
            f"I approve {change_request.number} for prod as peer reviewer for Data Science" in page
        )
        assert 'type="password"' in page
        assert change_request.content_digest in page

    def test_signing_in_the_browser(self, login, peer, password, new_change):
        change_request = new_change()
        response = sign_post(login(peer), change_request, password)
        assert response.status_code == 302
        sign_off = SignOff.objects.get(change_request=change_request)
        assert sign_off.reauthenticated and sign_off.signer == peer
        event = AuditEvent.objects.filter(action="change_request.signed").latest("seq")
        assert password not in event.body
        assert event.request_id

    def test_a_wrong_password_signs_nothing(self, login, peer, new_change):
        change_request = new_change()
        response = sign_post(login(peer), change_request, "not-my-password")
        assert response.status_code == 403
        assert b"password" in response.content
        assert not SignOff.objects.exists()

    def test_the_sign_page_refuses_those_with_nothing_to_sign(
        self, login, model_risk_approver, new_change
    ):
        change_request = new_change()
        response = login(model_risk_approver).get(url(change_request, "sign/"))
        assert response.status_code == 302


class TestBypassingTheButtons:
    """Separation of duties holds for direct POSTs to the sign-off URL."""

    def test_the_requester_cannot_sign_their_own_change(
        self, login, requester, password, new_change
    ):
        change_request = new_change()
        response = sign_post(login(requester), change_request, password, team="data-science")
        assert response.status_code == 403
        assert b"your own change" in response.content
        assert not SignOff.objects.exists()

    def test_a_non_approver_cannot_sign_for_a_team(
        self, login, peer, auditor, password, new_change
    ):
        change_request = new_change()
        sign(peer, change_request)
        change_request.refresh_from_db()
        response = sign_post(login(auditor), change_request, password, team="model-risk")
        assert response.status_code == 403
        assert b"approver role" in response.content
        assert SignOff.objects.filter(change_request=change_request).count() == 1

    def test_someone_who_signed_for_one_team_cannot_sign_for_another(
        self, org, login, peer, model_risk_approver, password, new_change
    ):
        org_services.membership_set(
            actor=None, user=model_risk_approver, team=org["release-management"], is_approver=True
        )
        change_request = new_change()
        sign(peer, change_request)
        sign(model_risk_approver, change_request, team=org["model-risk"])
        change_request.refresh_from_db()
        response = sign_post(
            login(model_risk_approver), change_request, password, team="release-management"
        )
        assert response.status_code == 403
        assert b"already signed" in response.content
        assert SignOff.objects.filter(change_request=change_request).count() == 2

    def test_a_stale_digest_is_refused(self, login, peer, password, new_change):
        change_request = new_change()
        response = sign_post(login(peer), change_request, password, content_digest=digest("older"))
        assert response.status_code == 409
        assert not SignOff.objects.exists()


def test_editing_in_the_browser_voids_the_sign_offs_and_the_page_shows_both(
    login, requester, peer, new_change
):
    change_request = new_change()
    sign(peer, change_request)
    client = login(requester)
    data = form_data(change_request.model_version, test_evidence="New backtest")
    del data["environment"], data["action"]
    response = client.post(url(change_request, "edit/"), data)
    assert response.status_code == 302
    change_request.refresh_from_db()
    assert change_request.state == State.DRAFT
    page = client.get(url(change_request)).content.decode()
    assert "void: The change request was edited" in page
    assert "change_request.signed" in page and "change_request.edited" in page


def test_the_waiting_list_is_oldest_first_and_per_signer(
    login, peer, model_risk_approver, requester, new_change
):
    first, second = new_change(), new_change()
    ChangeRequest.objects.filter(pk=first.pk).update(
        submitted_at=timezone.now() - timedelta(days=3)
    )
    page = login(peer).get("/releases/waiting/").content.decode()
    assert page.index(first.number) < page.index(second.number)
    assert "3\xa0days" in page
    sign(peer, second)
    risk_page = login(model_risk_approver).get("/releases/waiting/").content.decode()
    assert second.number in risk_page and first.number not in risk_page
    assert "Nothing waits" in login(requester).get("/releases/waiting/").content.decode()


def test_the_dashboard_shows_what_waits_for_me(login, peer, new_change):
    change_request = new_change()
    page = login(peer).get("/").content.decode()
    assert "Waiting for me" in page and change_request.number in page


def test_the_list_filters(login, auditor, new_change, envs, org):
    in_prod = new_change()
    in_test = new_change("test")
    client = login(auditor)
    page = client.get("/releases/change-requests/?environment=test").content.decode()
    assert in_test.number in page and in_prod.number not in page
    page = client.get("/releases/change-requests/?state=in_review&model=fraud-detector")
    assert in_prod.number in page.content.decode()
    page = client.get("/releases/change-requests/?team=model-risk&requester=requester")
    assert in_prod.number not in page.content.decode()
    page = client.get("/releases/change-requests/?team=data-science&requester=requester")
    assert in_prod.number in page.content.decode()


def test_freeze_and_emergency_pages(login, auditor, envs):
    start = timezone.now() + timedelta(days=20)
    policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=start,
        ends_at=start + timedelta(days=10),
        reason="Year-end",
    )
    client = login(auditor)
    page = client.get("/releases/freezes/").content.decode()
    assert "Year-end" in page and "Model Risk" in page
    assert client.get("/releases/emergencies/").status_code == 200


def test_unknown_numbers_are_404(login, auditor):
    assert login(auditor).get("/releases/change-requests/CR-424242/").status_code == 404


def _page_queries(client, change_request) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(change_request)).status_code == 200
    return len(queries)


def _pad(change_request, signers, count):
    """`count` voided sign-offs and `count` audit events more on the request."""
    signed_at = timezone.now()
    SignOff.objects.bulk_create(
        SignOff(
            change_request=change_request,
            kind="peer_review",
            team=change_request.team,
            signer=signers[index % len(signers)],
            decision="approve",
            meaning="I approve",
            content_digest=change_request.content_digest,
            policy=change_request.policy,
            signed_at=signed_at,
            voided_at=signed_at,
            voided_reason="edited",
        )
        for index in range(count)
    )
    with transaction.atomic():
        for index in range(count):
            audit_record(
                actor=None,
                action=AuditAction.CHANGE_REQUEST_EDITED,
                target=change_request,
                data={"n": index},
            )


def test_the_page_costs_the_same_queries_with_2_or_40_sign_offs_and_events(
    login, auditor, peer, model_risk_approver, release_approver, new_change
):
    small, large = new_change(), new_change()
    signers = [peer, model_risk_approver, release_approver]
    _pad(small, signers, 2)
    _pad(large, signers, 40)
    client = login(auditor)
    _page_queries(client, small)
    assert _page_queries(client, small) == _page_queries(client, large)
    assert large.sign_offs.count() == 40


def test_auditors_get_a_link_to_the_audit_trail_of_the_request(login, auditor, peer, new_change):
    change_request = new_change()
    link = f"/audit/?about={change_request.number}"
    assert 'href="#timeline"' in login(peer).get(url(change_request)).content.decode()
    assert link not in login(peer).get(url(change_request)).content.decode()
    Group.objects.get_or_create(name="Auditors")[0].user_set.add(auditor)
    assert link in login(auditor).get(url(change_request)).content.decode()
