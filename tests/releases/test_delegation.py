"""Delegation during an absence (issue 17): an approver records an absence naming a delegate, an
approver of the same team, who then approves "on behalf of <Team>, as delegate of <Name>".
Every rule is tested both ways; the refusals are the sidesteps a careless user or an attacker
would try, each with its stable code. Separation of duties binds both people."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from git import Actor
from pypdf import PdfReader

from audit.models import AuditEvent
from organisation import services as org_services
from organisation.demo import DEMO_PASSWORD
from portal.exceptions import Conflict, RuleDenied
from portal.models import Absence, Notification
from registry.builders import build_register, repository_with_mirror, training_commits
from releases.builders import change_fields, sign
from releases.models import SignOff
from releases.reconciliation import discrepancies_find
from releases.selectors.change_requests import change_requests_waiting_for
from releases.selectors.evidence import change_request_evidence
from releases.services import change_requests as services
from releases.services import policy
from releases.states import Kind, State

pytestmark = pytest.mark.django_db

MEANING = "on behalf of Model Risk, as delegate of Rita Kovacs"


def denied(call, code, kind=RuleDenied):
    with pytest.raises(kind) as error:
        call()
    assert error.value.code == code, error.value.detail
    return error.value


def day(offset: int = 0):
    return timezone.localdate() + timedelta(days=offset)


def away(person, delegate, team, *, starts: int = 0, ends: int = 5, actor="self", now=None):
    return org_services.absence_set(
        actor=person if actor == "self" else actor,
        person=person,
        team=team,
        delegate=delegate,
        starts_on=day(starts),
        ends_on=day(ends),
        now=now,
    )


@pytest.fixture
def rita(model_risk_approver):
    return model_risk_approver


@pytest.fixture
def deputy(org):
    """Milan Novak, the other approver of Model Risk."""
    user = org_services.user_create(
        actor=None,
        username="riskdeputy",
        password=DEMO_PASSWORD,
        first_name="Milan",
        last_name="Novak",
        email="milan@bank.example",
    )
    org_services.membership_set(actor=None, user=user, team=org["model-risk"], is_approver=True)
    return user


@pytest.fixture
def rita_away(rita, deputy, org):
    return away(rita, deputy, org["model-risk"])


@pytest.fixture
def in_approval(new_change, peer):
    """A prod change past its peer review, waiting for the three approval teams."""
    change_request = new_change()
    sign(peer, change_request)
    change_request.refresh_from_db()
    return change_request


def as_delegate(deputy, change_request, principal, **options):
    return sign(deputy, change_request, on_behalf_of=principal, **options)


class TestRecordingAnAbsence:
    def test_an_approver_names_a_delegate_of_the_same_team(self, rita, deputy, org):
        absence = away(rita, deputy, org["model-risk"], starts=1, ends=10)
        assert (absence.person, absence.delegate, absence.team) == (rita, deputy, org["model-risk"])
        assert absence.created_by_name == "Rita Kovacs"
        event = AuditEvent.objects.get(action="absence.set")
        assert event.actor_name == "risk"
        assert event.data["person"] == {"id": rita.pk, "username": "risk", "name": "Rita Kovacs"}
        assert event.data["delegate"]["name"] == "Milan Novak"
        assert event.data["team"] == "model-risk"
        assert (event.data["starts_on"], event.data["ends_on"]) == (
            day(1).isoformat(),
            day(10).isoformat(),
        )
        told = Notification.objects.get(recipient=deputy)
        assert "stand in for Rita Kovacs" in told.subject

    @pytest.mark.parametrize("keeper", ["change_manager", "administrator"])
    def test_a_change_manager_or_an_admin_records_it_for_someone(
        self, keeper, request, rita, deputy, org
    ):
        actor = request.getfixturevalue(keeper)
        absence = away(rita, deputy, org["model-risk"], actor=actor)
        event = AuditEvent.objects.get(action="absence.set")
        # Both names: who is away, and who recorded it.
        assert event.actor_name == actor.username
        assert event.data["person"]["username"] == "risk"
        assert event.data["recorded_by"]["username"] == actor.username
        assert absence.created_by_name == actor.get_full_name()
        assert Notification.objects.filter(recipient=rita, key__endswith=":person").exists()

    def test_nobody_else_records_it_for_someone(self, rita, deputy, release_approver, org):
        denied(
            lambda: away(rita, deputy, org["model-risk"], actor=release_approver),
            "not_allowed_to_record_absence",
        )
        assert not Absence.objects.exists()

    def test_a_token_records_nothing(self, rita, deputy, org, ci):
        denied(lambda: away(rita, deputy, org["model-risk"], actor=ci.account), "people_only")

    def test_the_last_day_is_not_before_the_first(self, rita, deputy, org):
        with pytest.raises(ValidationError) as error:
            away(rita, deputy, org["model-risk"], starts=3, ends=2)
        assert "ends_on" in error.value.message_dict

    def test_an_absence_is_not_back_dated(self, rita, deputy, org):
        denied(lambda: away(rita, deputy, org["model-risk"], starts=-1), "absence_backdated")
        denied(
            lambda: away(rita, deputy, org["model-risk"], starts=-3, ends=-1), "absence_backdated"
        )
        assert away(rita, deputy, org["model-risk"], starts=0, ends=0)

    def test_only_an_approver_of_the_team_has_approvals_to_delegate(self, peer, requester, org):
        denied(lambda: away(peer, requester, org["data-science"]), "not_an_approver")

    def test_the_delegate_holds_the_approver_role_in_that_team(
        self, rita, release_approver, peer, org
    ):
        denied(lambda: away(rita, release_approver, org["model-risk"]), "delegate_not_an_approver")
        # A plain member of the team is not enough either.
        org_services.membership_set(actor=None, user=peer, team=org["model-risk"])
        denied(lambda: away(rita, peer, org["model-risk"]), "delegate_not_an_approver")

    def test_nobody_delegates_to_themself(self, rita, org):
        denied(lambda: away(rita, rita, org["model-risk"]), "delegate_is_self")

    def test_overlapping_absences_for_the_same_team_are_refused(self, rita, deputy, org):
        first = away(rita, deputy, org["model-risk"], starts=2, ends=6)
        denied(
            lambda: away(rita, deputy, org["model-risk"], starts=6, ends=9),
            "absence_overlaps",
            Conflict,
        )
        assert away(rita, deputy, org["model-risk"], starts=7, ends=9)
        org_services.absence_cancel(actor=rita, absence=first)
        assert away(rita, deputy, org["model-risk"], starts=2, ends=6)

    def test_a_delegate_away_then_is_refused(self, rita, deputy, org, release_approver):
        org_services.membership_set(
            actor=None, user=release_approver, team=org["model-risk"], is_approver=True
        )
        away(deputy, release_approver, org["model-risk"], starts=4, ends=8)
        denied(
            lambda: away(rita, deputy, org["model-risk"], starts=0, ends=4),
            "delegate_absent",
            Conflict,
        )
        assert away(rita, deputy, org["model-risk"], starts=0, ends=3)

    def test_a_delegate_does_not_delegate_further(self, rita, deputy, org, release_approver):
        org_services.membership_set(
            actor=None, user=release_approver, team=org["model-risk"], is_approver=True
        )
        away(rita, deputy, org["model-risk"], starts=0, ends=5)
        denied(
            lambda: away(deputy, release_approver, org["model-risk"], starts=5, ends=7),
            "delegate_chain",
            Conflict,
        )


class TestCancelling:
    def test_the_person_cancels_and_the_delegate_no_longer_signs(
        self, rita_away, rita, deputy, in_approval
    ):
        org_services.absence_cancel(actor=rita, absence=rita_away)
        rita_away.refresh_from_db()
        assert rita_away.cancelled_at is not None and rita_away.cancelled_by_name == "Rita Kovacs"
        event = AuditEvent.objects.get(action="absence.cancelled")
        assert event.data["cancelled_by"]["username"] == "risk"
        assert Notification.objects.filter(recipient=deputy, key__endswith="cancelled:delegate")
        denied(lambda: as_delegate(deputy, in_approval, rita), "not_a_delegate")

    def test_what_the_delegate_signed_before_stands(self, rita_away, rita, deputy, in_approval):
        sign_off = as_delegate(deputy, in_approval, rita)
        org_services.absence_cancel(actor=rita, absence=rita_away)
        sign_off.refresh_from_db()
        assert sign_off.voided_at is None and sign_off.on_behalf_of == rita

    def test_the_delegate_or_another_approver_may_not_cancel(
        self, rita_away, deputy, release_approver, change_manager
    ):
        for someone in (deputy, release_approver):
            denied(
                lambda someone=someone: org_services.absence_cancel(
                    actor=someone, absence=rita_away
                ),
                "not_allowed_to_record_absence",
            )
        org_services.absence_cancel(actor=change_manager, absence=rita_away)
        assert AuditEvent.objects.get(action="absence.cancelled").actor_name == "changemgr"

    def test_twice_or_once_over_is_refused(self, rita, deputy, org, rita_away):
        org_services.absence_cancel(actor=rita, absence=rita_away)
        denied(
            lambda: org_services.absence_cancel(actor=rita, absence=rita_away),
            "absence_cancelled",
            Conflict,
        )
        past = timezone.now() - timedelta(days=20)
        over = away(rita, deputy, org["model-risk"], starts=-20, ends=-18, now=past)
        denied(
            lambda: org_services.absence_cancel(actor=rita, absence=over), "absence_over", Conflict
        )


class TestSigningOnBehalf:
    def test_the_delegate_approves_for_the_absent_approvers_team(
        self, rita_away, rita, deputy, in_approval, release_approver, platform_approver
    ):
        sign_off = as_delegate(deputy, in_approval, rita)
        assert sign_off.signer == deputy and sign_off.on_behalf_of == rita
        assert sign_off.team.slug == "model-risk"
        assert sign_off.meaning == f"I approve {in_approval.number} for prod {MEANING}"
        event = AuditEvent.objects.filter(action="change_request.signed").latest("seq")
        assert event.actor_name == "riskdeputy"
        assert event.data["meaning"] == sign_off.meaning
        assert event.data["on_behalf_of"] == {
            "id": rita.pk,
            "username": "risk",
            "name": "Rita Kovacs",
            "absence": rita_away.pk,
        }
        sign(release_approver, in_approval)
        sign(platform_approver, in_approval)
        in_approval.refresh_from_db()
        assert in_approval.state == State.APPROVED

    def test_a_signature_in_ones_own_name_says_nothing_of_delegation(self, rita, in_approval):
        sign_off = sign(rita, in_approval)
        assert sign_off.on_behalf_of is None
        event = AuditEvent.objects.filter(action="change_request.signed").latest("seq")
        assert "on_behalf_of" not in event.data

    def test_the_absent_approver_may_still_sign_and_then_the_slot_is_filled(
        self, rita_away, rita, deputy, in_approval
    ):
        assert sign(rita, in_approval).on_behalf_of is None
        denied(lambda: as_delegate(deputy, in_approval, rita), "team_already_signed", Conflict)

    def test_no_absence_no_delegation(self, rita, deputy, in_approval):
        denied(lambda: as_delegate(deputy, in_approval, rita), "not_a_delegate")

    def test_only_the_named_delegate(self, rita_away, rita, release_approver, org, in_approval):
        org_services.membership_set(
            actor=None, user=release_approver, team=org["model-risk"], is_approver=True
        )
        denied(lambda: as_delegate(release_approver, in_approval, rita), "not_a_delegate")

    def test_only_for_the_team_of_the_absence(
        self, rita, deputy, org, in_approval, platform_approver
    ):
        # Rita approves for Platform Operations too, and Milan with her; her absence names
        # Milan for Model Risk only, so he cannot take her Platform Operations place.
        for user in (rita, deputy):
            org_services.membership_set(
                actor=None, user=user, team=org["platform-operations"], is_approver=True
            )
        away(rita, deputy, org["model-risk"])
        denied(
            lambda: as_delegate(deputy, in_approval, rita, team=org["platform-operations"]),
            "not_a_delegate",
        )

    def test_only_inside_the_dates(self, rita, deputy, org, in_approval):
        absence = away(rita, deputy, org["model-risk"], starts=1, ends=3)
        denied(lambda: as_delegate(deputy, in_approval, rita), "delegation_not_current")
        after = timezone.now() + timedelta(days=4)
        denied(lambda: as_delegate(deputy, in_approval, rita, now=after), "delegation_not_current")
        inside = timezone.now() + timedelta(days=2)
        sign_off = as_delegate(deputy, in_approval, rita, now=inside)
        assert sign_off.on_behalf_of == rita
        event = AuditEvent.objects.filter(action="change_request.signed").latest("seq")
        assert event.data["on_behalf_of"]["absence"] == absence.pk

    def test_the_day_is_the_portals_not_utc(self, settings, rita, deputy, org, in_approval):
        """An absence starting tomorrow in Tokyo has started at 23:30 UTC the day before."""
        settings.TIME_ZONE = "Asia/Tokyo"
        timezone.deactivate()
        late_utc = timezone.now().replace(hour=23, minute=30, second=0, microsecond=0)
        tokyo_day = timezone.localdate(late_utc)
        org_services.absence_set(
            actor=rita,
            person=rita,
            team=org["model-risk"],
            delegate=deputy,
            starts_on=tokyo_day,
            ends_on=tokyo_day,
            now=late_utc,
        )
        assert tokyo_day != late_utc.date()
        sign_off = as_delegate(deputy, in_approval, rita, now=late_utc)
        assert sign_off.on_behalf_of == rita

    def test_only_a_team_approval_is_delegated(self, rita_away, rita, deputy, new_change, org):
        in_review = new_change()
        org_services.membership_set(actor=None, user=deputy, team=org["data-science"])
        denied(lambda: as_delegate(deputy, in_review, rita), "delegation_not_for_kind")
        emergency = new_change(kind=Kind.EMERGENCY, incident_ref="INC-7")
        org_services.membership_set(
            actor=None,
            user=deputy,
            team=org["model-risk"],
            is_approver=True,
            is_emergency_approver=True,
        )
        denied(lambda: as_delegate(deputy, emergency, rita), "delegation_not_for_kind")

    def test_a_demoted_delegate_signs_nothing_as_delegate(
        self, rita_away, rita, deputy, org, in_approval
    ):
        org_services.membership_set(actor=None, user=deputy, team=org["model-risk"])
        denied(lambda: as_delegate(deputy, in_approval, rita), "not_an_approver")

    def test_a_demoted_principals_delegation_is_void(
        self, rita_away, rita, deputy, org, in_approval
    ):
        org_services.membership_set(actor=None, user=rita, team=org["model-risk"])
        denied(lambda: as_delegate(deputy, in_approval, rita), "principal_not_an_approver")
        # A principal who left (deactivated) too.
        org_services.membership_set(actor=None, user=rita, team=org["model-risk"], is_approver=True)
        rita.is_active = False
        rita.save(update_fields=["is_active"])
        denied(lambda: as_delegate(deputy, in_approval, rita), "principal_not_an_approver")

    def test_nobody_signs_the_principals_own_change_for_them(
        self, rita_away, rita, deputy, org, version, envs, peer
    ):
        org_services.membership_set(actor=None, user=rita, team=org["data-science"])
        change_request = services.change_request_file(
            actor=rita, **change_fields(version, envs["prod"])
        )
        sign(peer, change_request)
        denied(lambda: as_delegate(deputy, change_request, rita), "principal_own_change")

    def test_the_delegate_does_not_sign_their_own_change(
        self, rita_away, rita, deputy, org, version, envs, peer
    ):
        org_services.membership_set(actor=None, user=deputy, team=org["data-science"])
        change_request = services.change_request_file(
            actor=deputy, **change_fields(version, envs["prod"])
        )
        sign(peer, change_request)
        denied(lambda: as_delegate(deputy, change_request, rita), "own_change")

    def test_a_principal_who_reviewed_cannot_have_a_delegate_approve(
        self, rita_away, rita, deputy, org, new_change
    ):
        org_services.membership_set(actor=None, user=rita, team=org["data-science"])
        change_request = new_change()
        assert sign(rita, change_request).kind == "peer_review"
        denied(lambda: as_delegate(deputy, change_request, rita), "principal_already_signed")

    def test_a_delegate_who_signed_cannot_sign_again_as_delegate(
        self, rita_away, rita, deputy, org, in_approval
    ):
        org_services.membership_set(
            actor=None, user=deputy, team=org["release-management"], is_approver=True
        )
        sign(deputy, in_approval, team=org["release-management"])
        denied(lambda: as_delegate(deputy, in_approval, rita), "already_signed")

    def test_a_principal_represented_once_does_not_sign_again(
        self, rita_away, rita, deputy, org, in_approval
    ):
        org_services.membership_set(
            actor=None, user=rita, team=org["release-management"], is_approver=True
        )
        as_delegate(deputy, in_approval, rita)
        error = denied(
            lambda: sign(rita, in_approval, team=org["release-management"]), "already_signed"
        )
        assert "through your delegate" in error.detail

    def test_a_delegate_away_themself_does_not_sign_as_delegate(
        self, rita_away, rita, deputy, org, in_approval, release_approver
    ):
        # The service refuses such an overlap; a row written past it must not chain either.
        Absence.objects.create(
            person=deputy,
            team=org["model-risk"],
            delegate=release_approver,
            starts_on=day(0),
            ends_on=day(1),
            created_by_name="sql",
        )
        denied(lambda: as_delegate(deputy, in_approval, rita), "delegate_absent")

    def test_the_wrong_password_signs_nothing(self, rita_away, rita, deputy, in_approval):
        denied(lambda: as_delegate(deputy, in_approval, rita, password="not-his"), "reauth_failed")
        assert not SignOff.objects.filter(on_behalf_of=rita).exists()

    def test_the_database_refuses_a_delegation_the_service_would(self, rita, deputy, in_approval):
        first = SignOff.objects.filter(change_request=in_approval).first()
        with pytest.raises(IntegrityError), transaction.atomic():
            SignOff.objects.filter(pk=first.pk).update(on_behalf_of=first.signer)
        # Only an approval is given on someone's behalf.
        with pytest.raises(IntegrityError), transaction.atomic():
            SignOff.objects.filter(pk=first.pk).update(on_behalf_of=rita)


class TestCommitAuthors:
    """Where the policy excludes commit authors, the principal's commits exclude their delegate
    too."""

    @pytest.fixture
    def release(self, org, envs, tmp_path, rita):
        rita.email = "rita@bank.example"
        rita.save(update_fields=["email"])
        shas = repository_with_mirror(
            tmp_path / "src",
            training_commits(2, authors=[Actor("Rita Kovacs", "RITA@bank.example")] * 2),
        )
        version = build_register("fraud-detector", "2.0.0", commit_sha=shas[-1])
        policy.environment_policy_change(
            actor=None,
            environment=envs["test"],
            approval_teams=[org["model-risk"]],
            exclude_commit_authors=True,
        )
        return version

    def test_the_principals_commits_bar_their_delegate(
        self, release, envs, requester, peer, rita_away, rita, deputy
    ):
        change_request = services.change_request_file(
            actor=requester, **change_fields(release, envs["test"])
        )
        sign(peer, change_request)
        denied(lambda: as_delegate(deputy, change_request, rita), "principal_commit_author")
        # In his own name Milan wrote no commit of it.
        assert sign(deputy, change_request).on_behalf_of is None


class TestWhatTheDelegateSees:
    def test_waiting_for_me_marks_the_delegated_approval(
        self, rita_away, rita, deputy, in_approval
    ):
        [item] = [
            i for i in change_requests_waiting_for(user=deputy) if i.change_request == in_approval
        ]
        assert item.slot.team.slug == "model-risk" and item.on_behalf_of == rita
        assert item.sign_query == "?team=model-risk&on_behalf_of=risk"

    def test_without_an_absence_the_item_is_in_ones_own_name(self, deputy, in_approval):
        [item] = [
            i for i in change_requests_waiting_for(user=deputy) if i.change_request == in_approval
        ]
        assert item.on_behalf_of is None

    def test_nothing_is_marked_where_the_principal_may_not_sign(
        self, rita_away, rita, deputy, org, new_change
    ):
        org_services.membership_set(actor=None, user=rita, team=org["data-science"])
        change_request = new_change()
        sign(rita, change_request)
        items = [
            i
            for i in change_requests_waiting_for(user=deputy)
            if i.change_request == change_request
        ]
        assert [i.on_behalf_of for i in items] == [None]

    def test_the_dashboard_and_the_change_page_say_as_delegate_of(
        self, rita_away, deputy, in_approval, login
    ):
        client = login(deputy)
        assert "as delegate of Rita Kovacs" in client.get("/").content.decode()
        assert "as delegate of Rita Kovacs" in client.get("/releases/waiting/").content.decode()
        page = client.get(f"/releases/change-requests/{in_approval.number}/").content.decode()
        assert "Review and sign as delegate of Rita Kovacs" in page
        assert "sign/?team=model-risk&amp;on_behalf_of=risk" in page

    def test_the_sign_page_shows_the_delegated_meaning_and_signs(
        self, rita_away, rita, deputy, in_approval, login
    ):
        client = login(deputy)
        url = f"/releases/change-requests/{in_approval.number}/sign/"
        page = client.get(url, {"team": "model-risk", "on_behalf_of": "risk"})
        assert f"I approve {in_approval.number} for prod {MEANING}" in page.content.decode()
        response = client.post(
            url,
            {
                "decision": "approve",
                "password": DEMO_PASSWORD,
                "content_digest": in_approval.content_digest,
                "team": "model-risk",
                "on_behalf_of": "risk",
            },
        )
        assert response.status_code == 302
        assert SignOff.objects.get(on_behalf_of=rita).signer == deputy
        shown = client.get(f"/releases/change-requests/{in_approval.number}/").content.decode()
        assert "by Milan Novak, as delegate of Rita Kovacs" in shown

    def test_the_sign_page_refuses_a_delegation_that_is_not(self, rita, deputy, in_approval, login):
        client = login(deputy)
        url = f"/releases/change-requests/{in_approval.number}/sign/"
        data = {
            "decision": "approve",
            "password": DEMO_PASSWORD,
            "content_digest": in_approval.content_digest,
            "team": "model-risk",
        }
        response = client.post(url, {**data, "on_behalf_of": "risk"})
        assert response.status_code == 403
        assert "has not named you their delegate" in response.content.decode()
        response = client.post(url, {**data, "on_behalf_of": "nobody-here"})
        assert response.status_code == 403
        assert not SignOff.objects.filter(signer=deputy).exists()

    def test_the_delegate_is_told_why_it_waits_for_them(self, rita_away, deputy, new_change, peer):
        change_request = new_change()
        sign(peer, change_request)
        told = Notification.objects.get(
            recipient=deputy, key__startswith=f"cr:{change_request.pk}:waiting"
        )
        assert "stand in for Rita Kovacs" in told.reason
        assert "as their delegate" in told.reason

    def test_the_requester_is_told_who_signed_for_whom(
        self, rita_away, rita, deputy, in_approval, requester
    ):
        sign_off = as_delegate(deputy, in_approval, rita)
        told = Notification.objects.get(recipient=requester, key=f"signoff:{sign_off.pk}")
        assert "Milan Novak (delegate of Rita Kovacs) approved for Model Risk" in told.subject


class TestRecordsAndEvidence:
    def test_the_api_names_the_principal(self, rita_away, rita, deputy, in_approval, login):
        as_delegate(deputy, in_approval, rita)
        body = login(deputy).get(f"/api/v1/change-requests/{in_approval.number}/").json()
        delegated = [s for s in body["sign_offs"] if s["on_behalf_of"]]
        assert [(s["signer"], s["on_behalf_of"]) for s in delegated] == [("riskdeputy", "risk")]
        assert all(s["on_behalf_of"] is None for s in body["sign_offs"] if s not in delegated)

    def test_the_evidence_names_the_principal(self, rita_away, rita, deputy, in_approval):
        as_delegate(deputy, in_approval, rita)
        facts = change_request_evidence(change_request=in_approval).facts
        [delegated] = [s for s in facts["sign_offs"] if s["on_behalf_of"]]
        assert delegated["signer"] == "Milan Novak"
        assert delegated["on_behalf_of"] == "Rita Kovacs"
        assert delegated["on_behalf_of_username"] == "risk"
        assert MEANING in delegated["meaning"]

    def test_the_evidence_pdf_names_the_principal(
        self, rita_away, rita, deputy, in_approval, login
    ):
        as_delegate(deputy, in_approval, rita)
        response = login(deputy).get(f"/api/v1/change-requests/{in_approval.number}/evidence/")
        content = b"".join(response) if response.streaming else response.content
        with zipfile.ZipFile(io.BytesIO(content)) as pack:
            pdf = PdfReader(io.BytesIO(pack.read("evidence.pdf")))
            facts = json.loads(pack.read("evidence.json"))
        text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
        assert "Milan Novak, as delegate of Rita Kovacs" in text
        assert [s["on_behalf_of_username"] for s in facts["sign_offs"]] == [None, "risk"]

    def test_a_delegated_sign_off_is_explained_by_the_trail(
        self, rita_away, rita, deputy, in_approval
    ):
        as_delegate(deputy, in_approval, rita)
        assert discrepancies_find() == []

    def test_a_delegation_written_by_sql_is_reported(
        self, rita_away, rita, deputy, in_approval, release_approver
    ):
        own = sign(release_approver, in_approval)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE releases_signoff SET on_behalf_of_id = %s WHERE id = %s",
                [rita.pk, own.pk],
            )
        found = {(d.object_type, d.object_id, d.field) for d in discrepancies_find()}
        assert ("releases.signoff", str(own.pk), "on_behalf_of") in found

    def test_an_absence_stretched_or_handed_by_sql_is_reported(self, rita_away, release_approver):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE portal_absence SET ends_on = %s, delegate_id = %s WHERE id = %s",
                [day(60), release_approver.pk, rita_away.pk],
            )
        found = {
            (d.object_id, d.field)
            for d in discrepancies_find()
            if d.object_type == "portal.absence"
        }
        assert found == {(str(rita_away.pk), "ends_on"), (str(rita_away.pk), "delegate")}


class TestAbsencePages:
    def test_the_form_offers_only_eligible_delegates(self, rita, deputy, release_approver, login):
        form = login(rita).get("/absences/").context["form"]
        assert "person" not in form.fields
        offered = {(m.user.username, m.team.slug) for m in form.fields["delegate"].queryset}
        assert offered == {("riskdeputy", "model-risk")}

    def test_a_change_manager_chooses_who_is_away(self, change_manager, rita, deputy, login):
        form = login(change_manager).get("/absences/").context["form"]
        assert rita in form.fields["person"].queryset
        assert change_manager not in form.fields["person"].queryset

    def test_someone_without_approvals_is_told_so(self, peer, login):
        page = login(peer).get("/absences/").content.decode()
        assert "You hold no approver role" in page

    def test_recording_and_cancelling_in_the_page(self, rita, deputy, login, org):
        client = login(rita)
        membership = deputy.memberships.get(team=org["model-risk"])
        response = client.post(
            "/absences/",
            {
                "delegate": membership.pk,
                "starts_on": day(0).isoformat(),
                "ends_on": day(4).isoformat(),
            },
        )
        assert response.status_code == 302
        absence = Absence.objects.get(person=rita)
        page = client.get("/absences/").content.decode()
        assert "Milan Novak" in page and "Away now" in page
        assert client.get("/").status_code == 200
        response = client.post(f"/absences/{absence.pk}/cancel/", follow=True)
        assert "The absence is cancelled" in response.content.decode()
        absence.refresh_from_db()
        assert absence.cancelled_at is not None

    def test_a_refusal_shows_on_the_form(self, rita, deputy, login, org):
        membership = deputy.memberships.get(team=org["model-risk"])
        response = login(rita).post(
            "/absences/",
            {
                "delegate": membership.pk,
                "starts_on": day(-2).isoformat(),
                "ends_on": day(4).isoformat(),
            },
        )
        assert response.status_code == 403
        assert "not back-dated" in response.content.decode()
        response = login(rita).post(
            "/absences/",
            {
                "delegate": membership.pk,
                "starts_on": day(4).isoformat(),
                "ends_on": day(2).isoformat(),
            },
        )
        assert response.status_code == 400
        assert response.context["form"].errors["ends_on"]
        assert not Absence.objects.exists()

    def test_a_delegate_not_offered_is_refused(self, peer, rita, deputy, login, org):
        """A membership posted by hand that the select does not offer is refused (here to
        someone who holds no approver role, and so has no approvals to hand over)."""
        membership = deputy.memberships.get(team=org["model-risk"])
        response = login(peer).post(
            "/absences/",
            {
                "delegate": membership.pk,
                "starts_on": day(0).isoformat(),
                "ends_on": day(1).isoformat(),
            },
        )
        assert response.status_code == 400
        assert not Absence.objects.exists()

    def test_someone_elses_absence_is_not_cancelled_from_the_page(self, rita_away, deputy, login):
        response = login(deputy).post(f"/absences/{rita_away.pk}/cancel/", follow=True)
        assert "Only the person away" in response.content.decode()
        rita_away.refresh_from_db()
        assert rita_away.cancelled_at is None

    def test_the_admin_cancels_through_the_service(self, rita_away, administrator, login):
        login(administrator).post(
            "/admin/portal/absence/",
            {"action": "cancel", "_selected_action": [rita_away.pk]},
        )
        rita_away.refresh_from_db()
        assert rita_away.cancelled_by_name == administrator.get_full_name()
        assert AuditEvent.objects.get(action="absence.cancelled").actor_name == "admin"


def test_the_demo_has_an_approver_away_with_a_delegate(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    users = get_user_model().objects
    absence = Absence.objects.get(person__username="risk")
    assert absence.covers(timezone.localdate())
    assert absence.delegate.username == "riskdeputy" and absence.team.slug == "model-risk"
    assert "signs for Model Risk as her delegate" in out.getvalue()
    waiting = change_requests_waiting_for(user=users.get(username="riskdeputy"))
    assert any(item.on_behalf_of == absence.person for item in waiting)
