"""Rule 6 for people who sign in at the bank's identity provider (no password here): signing
sends them to sign in there again (prompt=login, max_age=0, a state and nonce bound to this
pending signature), and the service signs only on an answer that confirms this signature, by
this signer, just now, at the assurance the policy asks for. Against a real provider
(tests/oidc/provider.js), whose tokens are real; each refusal is a test."""

from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from organisation.oidc import step_up_answer
from organisation.services import absence_set
from portal.exceptions import Conflict, RuleDenied
from portal.models import Membership, ProviderIdentity
from releases.builders import policy_amended, sign
from releases.models import EnvironmentPolicy, SignatureStepUp, SignOff
from releases.reconciliation import discrepancies_find
from releases.services import change_requests
from releases.states import State
from tests.oidc.conftest import ALMA, BERT
from tests.oidc.server import MFA_ACR, PASSWORD_ACR, portal_address

RETURNED = "http://testserver/releases/signature/returned/"


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.fixture
def waiting(new_change, peer):
    """A prod change past its peer review, waiting for the approval teams."""
    change_request = new_change()
    sign(peer, change_request)
    change_request.refresh_from_db()
    assert change_request.state == State.IN_APPROVAL
    return change_request


@pytest.fixture
def alma(visitor, waiting):
    """Alma, Model Risk's approver at the provider, signed in to the portal through it."""
    person = visitor(ALMA)
    assert person.portal.get("/").status_code == 302
    person.sign_in()
    person.user = ProviderIdentity.objects.get(subject=ALMA.sub).user
    return person


def _ask_to_sign(person, change_request, decision="approve", comment=""):
    return person.portal.post(
        f"/releases/change-requests/{change_request.number}/sign/",
        {
            "decision": decision,
            "comment": comment,
            "content_digest": change_request.content_digest,
            "team": "model-risk",
        },
    )


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _require_acr(environment, acr: str) -> EnvironmentPolicy:
    return policy_amended(environment, required_acr=acr)


def _refusal(start: int) -> AuditEvent:
    return AuditEvent.objects.get(seq__gt=start, action="change_request.step_up_refused")


def test_a_provider_out_of_reach_signs_nothing_and_says_what_to_do(
    alma, waiting, provider_out_of_reach
):
    provider_out_of_reach()
    start = _tail()

    answer = _ask_to_sign(alma, waiting, comment="Validated last month.")

    assert answer.status_code == 503
    assert (
        "Bank SSO cannot be reached; nothing was signed. Try again in a few minutes; if it "
        "stays out of reach, tell an administrator."
    ) in answer.content.decode()
    assert not SignOff.objects.filter(signer=alma.user).exists()
    assert not SignatureStepUp.objects.exclude(taken_at=None).exists()
    assert _tail() == start


def test_signing_asks_for_a_new_sign_in_at_the_provider_and_records_it(alma, waiting):
    page = alma.portal.get(f"/releases/change-requests/{waiting.number}/sign/?team=model-risk")
    assert page.status_code == 200
    assert b'name="password"' not in page.content
    assert b"Sign in again at Bank SSO and sign" in page.content
    # The form's answer is a redirect to the provider, which form-action 'self' would stop.
    provider = alma.at_provider.provider.issuer
    assert f"form-action 'self' {provider};" in page["Content-Security-Policy"]

    sent = _ask_to_sign(alma, waiting, comment="Validated last month.")

    request = parse_qs(urlsplit(sent["Location"]).query)
    step_up = SignatureStepUp.objects.get()
    assert request["prompt"] == ["login"] and request["max_age"] == ["0"]
    assert request["state"] == [step_up.state] and request["nonce"] == [step_up.nonce]
    assert request["redirect_uri"] == [RETURNED] and "acr_values" not in request
    assert (step_up.signer, step_up.change_request, step_up.team.slug) == (
        alma.user,
        waiting,
        "model-risk",
    )
    assert not SignOff.objects.filter(signer=alma.user).exists()
    start = _tail()

    returned = alma.through_provider(sent)

    # Alma's session at the provider from her sign-in did not do: it asked again.
    assert alma.last.asked_to_sign_in
    assert returned["Location"] == f"/releases/change-requests/{waiting.number}/"
    assert _messages(returned) == [
        f"Signed: “I approve {waiting.number} for prod on behalf of Model Risk”."
    ]
    sign_off = SignOff.objects.get(signer=alma.user)
    assert sign_off.team.slug == "model-risk" and sign_off.comment == "Validated last month."
    assert sign_off.reauthenticated and sign_off.acr == PASSWORD_ACR
    assert timezone.now() - timedelta(seconds=30) < sign_off.auth_time <= timezone.now()
    assert sign_off.auth_time >= step_up.issued_at.replace(microsecond=0)
    event = AuditEvent.objects.get(seq__gt=start, action="change_request.signed")
    assert event.actor_id == str(alma.user.pk)
    assert event.data["reauthenticated_by"] == "identity_provider"
    assert event.data["acr"] == PASSWORD_ACR
    assert event.data["auth_time"] == sign_off.auth_time.isoformat().replace("+00:00", "Z")
    step_up.refresh_from_db()
    assert step_up.sign_off == sign_off and step_up.taken_at is not None
    detail = alma.portal.get(returned["Location"])
    assert b"signed in again at the identity provider" in detail.content
    api = alma.portal.get(f"/api/v1/change-requests/{waiting.number}/").json()
    [given] = [s for s in api["sign_offs"] if s["signer"] == alma.user.username]
    assert (given["acr"], given["auth_time"] is not None) == (PASSWORD_ACR, True)


@pytest.mark.parametrize(
    ("age", "why"),
    [
        (600, "older than GATEHOUSE_OIDC_STEP_UP_SECONDS"),
        (60, "recent, but from before the portal sent the signer there"),
    ],
)
def test_an_earlier_sign_in_at_the_provider_is_refused(alma, waiting, age, why):
    """A provider that ignores prompt=login and max_age and answers with the session it has:
    the portal reads `auth_time` and refuses."""
    start = _tail()

    returned = alma.through_provider(_ask_to_sign(alma, waiting), age=age)

    assert returned["Location"] == f"/releases/change-requests/{waiting.number}/"
    assert "earlier sign-in" in _messages(returned)[-1], why
    assert not SignOff.objects.filter(signer=alma.user).exists()
    assert _refusal(start).data["code"] == "step_up_stale"
    assert SignatureStepUp.objects.get().refusal == "step_up_stale"


def test_the_policy_asks_for_an_assurance_level_and_refuses_another(alma, waiting, envs):
    start = _tail()
    _require_acr(envs["prod"], MFA_ACR)
    changed = AuditEvent.objects.get(seq__gt=start, action="environment_policy.changed")
    assert (changed.data["before"]["required_acr"], changed.data["after"]["required_acr"]) == (
        "",
        MFA_ACR,
    )
    sent = _ask_to_sign(alma, waiting)
    assert parse_qs(urlsplit(sent["Location"]).query)["acr_values"] == [MFA_ACR]
    start = _tail()

    refused = alma.through_provider(sent, acr=PASSWORD_ACR)

    assert (
        f"only signatures confirmed at the identity provider with {MFA_ACR}"
        in (_messages(refused)[-1])
    )
    assert not SignOff.objects.filter(signer=alma.user).exists()
    assert _refusal(start).data["code"] == "acr_not_met"

    signed = alma.through_provider(_ask_to_sign(alma, waiting), acr=MFA_ACR)

    assert _messages(signed)[-1].startswith("Signed:")
    assert SignOff.objects.get(signer=alma.user).acr == MFA_ACR


def test_a_password_does_not_reach_the_policy_assurance_level(
    waiting, envs, release_approver, single_sign_on
):
    _require_acr(envs["prod"], MFA_ACR)
    with pytest.raises(RuleDenied) as refused:
        sign(release_approver, waiting, team=None)
    assert refused.value.code == "acr_not_met"
    assert "a password is not enough" in refused.value.detail


def test_a_replayed_answer_of_the_provider_is_refused(alma, waiting):
    sent = _ask_to_sign(alma, waiting)
    answer = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    assert alma.portal.get(portal_address(answer))["Location"].endswith(f"/{waiting.number}/")
    start = _tail()

    replayed = alma.portal.get(portal_address(answer))

    assert replayed["Location"] == "/"
    assert _messages(replayed)[-1] == (
        "This answer of the identity provider was used already; sign again."
    )
    assert SignOff.objects.filter(signer=alma.user).count() == 1
    assert _refusal(start).data["code"] == "step_up_replayed"


def test_a_replayed_state_with_a_fresh_token_is_refused_by_the_service(alma, waiting):
    """Someone who saw a used state and nonce asks the provider again with them: the token is
    genuine and fresh, the pending signature is spent."""
    sent = _ask_to_sign(alma, waiting)
    alma.through_provider(sent)
    spent = SignatureStepUp.objects.get()
    again = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    answer = step_up_answer(
        code=parse_qs(urlsplit(again).query)["code"][0],
        code_verifier=spent.code_verifier,
        redirect_uri=RETURNED,
    )
    assert answer.claims["nonce"] == spent.nonce

    with pytest.raises(Conflict) as taken:
        change_requests.change_request_step_up_take(actor=alma.user, state=spent.state)
    assert taken.value.code == "step_up_replayed"
    with pytest.raises(Conflict) as signed:
        change_requests.change_request_sign_at_provider(
            actor=alma.user, step_up=spent, claims=answer.claims
        )
    assert signed.value.code == "step_up_replayed"
    assert SignOff.objects.filter(signer=alma.user).count() == 1


def test_signing_in_at_the_provider_as_someone_else_is_refused(alma, visitor, waiting):
    """Bert, an approver too, signs in at the provider in Alma's browser: his token is genuine
    and fresh, but it does not confirm Alma."""
    visitor(BERT).sign_in()
    sent = _ask_to_sign(alma, waiting)
    answer = alma.at_provider.authorize(sent["Location"], BERT).returned_to
    start = _tail()

    refused = alma.portal.get(portal_address(answer))

    assert "as someone else" in _messages(refused)[-1]
    assert not SignOff.objects.filter(change_request=waiting, team__slug="model-risk").exists()
    assert _refusal(start).data["code"] == "step_up_wrong_signer"


def test_an_answer_for_another_pending_signature_is_refused(alma, waiting, new_change, peer):
    """Two signatures wait at the provider; the answer to the first is presented for the
    second. Through the browser the provider refuses the code (its PKCE verifier is the first
    one's); the service refuses the first one's token (its nonce) for the second."""
    other = new_change()
    sign(peer, other)
    other.refresh_from_db()
    first = _ask_to_sign(alma, waiting)
    first_answer = alma.at_provider.authorize(first["Location"], ALMA).returned_to
    first_step_up = SignatureStepUp.objects.get(change_request=waiting)
    _ask_to_sign(alma, other)
    second = SignatureStepUp.objects.get(change_request=other)
    code = parse_qs(urlsplit(first_answer).query)["code"][0]

    swapped = alma.portal.get(f"/releases/signature/returned/?code={code}&state={second.state}")

    assert "did not confirm your sign-in" in _messages(swapped)[-1]
    assert not SignOff.objects.filter(signer=alma.user).exists()

    third = _ask_to_sign(alma, other)
    third_step_up = SignatureStepUp.objects.filter(change_request=other).latest("issued_at")
    answer_for_first = step_up_answer(
        code=parse_qs(
            urlsplit(alma.at_provider.authorize(first["Location"], ALMA).returned_to).query
        )["code"][0],
        code_verifier=first_step_up.code_verifier,
        redirect_uri=RETURNED,
    )
    assert third.status_code == 302
    taken = change_requests.change_request_step_up_take(actor=alma.user, state=third_step_up.state)
    start = _tail()
    with pytest.raises(RuleDenied) as refused:
        change_requests.change_request_sign_at_provider(
            actor=alma.user, step_up=taken, claims=answer_for_first.claims
        )
    assert refused.value.code == "step_up_mismatch"
    assert not SignOff.objects.filter(signer=alma.user).exists()
    assert _refusal(start).data["code"] == "step_up_mismatch"


def test_nobody_else_can_take_a_pending_signature(alma, visitor, waiting):
    sent = _ask_to_sign(alma, waiting)
    answer = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    bert = visitor(BERT)
    bert.sign_in()

    refused = bert.portal.get(portal_address(answer))

    assert _messages(refused) == [
        "No signature of yours waits for this answer of the identity provider: start signing "
        "again from the change's page."
    ]
    assert SignatureStepUp.objects.get().taken_at is None
    signed = alma.portal.get(portal_address(answer))
    assert _messages(signed)[-1].startswith("Signed:")


def test_the_roles_follow_the_provider_groups_at_signing(alma, waiting, single_sign_on, org):
    """Leaving the approvers' group at the provider takes effect at the next signature, not
    only at the next sign-in to the portal; the change of role stays on record."""
    single_sign_on.people(replace(ALMA, groups=["risk-members"]), BERT)
    start = _tail()

    refused = alma.through_provider(_ask_to_sign(alma, waiting))

    assert "You do not hold the approver role in Model Risk" in _messages(refused)[-1]
    assert not SignOff.objects.filter(signer=alma.user).exists()
    assert not Membership.objects.get(user=alma.user, team=org["model-risk"]).is_approver
    changed = AuditEvent.objects.get(seq__gt=start, action="membership.changed")
    assert changed.data["roles_after"] == ["member"]


def test_an_answer_without_a_sign_in_signs_nothing(alma, waiting):
    _ask_to_sign(alma, waiting)
    step_up = SignatureStepUp.objects.get()

    cancelled = alma.portal.get(
        f"/releases/signature/returned/?error=access_denied&state={step_up.state}"
    )

    assert "did not confirm your sign-in; nothing was signed" in _messages(cancelled)[-1]
    assert not SignOff.objects.filter(signer=alma.user).exists()
    step_up.refresh_from_db()
    assert step_up.taken_at is not None


def test_a_changed_request_is_not_sent_to_the_provider(alma, waiting):
    response = alma.portal.post(
        f"/releases/change-requests/{waiting.number}/sign/",
        {"decision": "approve", "content_digest": "0" * 64, "team": "model-risk"},
    )
    assert response.status_code == 409
    assert not SignatureStepUp.objects.exists()


def test_a_local_account_still_types_its_password(
    login, model_risk_approver, waiting, settings, single_sign_on
):
    page = login(model_risk_approver).get(
        f"/releases/change-requests/{waiting.number}/sign/?team=model-risk"
    )
    assert b'name="password"' in page.content and b"Bank SSO" not in page.content


def test_the_trail_vouches_for_when_and_how_a_signer_signed_in_again(alma, waiting):
    """Rule 17: an `auth_time` or `acr` set by SQL after the signature is reported."""
    alma.through_provider(_ask_to_sign(alma, waiting))
    sign_off = SignOff.objects.get(signer=alma.user)
    assert not [found for found in discrepancies_find() if found.object_id == str(sign_off.pk)]

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_signoff SET auth_time = %s, acr = %s WHERE id = %s",
            [sign_off.auth_time - timedelta(hours=1), MFA_ACR, sign_off.pk],
        )

    reported = {
        found.field for found in discrepancies_find() if found.object_id == str(sign_off.pk)
    }
    assert reported == {"auth_time", "acr"}


def test_a_token_that_does_not_say_when_the_signer_signed_in_is_refused(alma, waiting):
    sent = _ask_to_sign(alma, waiting)
    returned = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    step_up = change_requests.change_request_step_up_take(
        actor=alma.user, state=SignatureStepUp.objects.get().state
    )
    answer = step_up_answer(
        code=parse_qs(urlsplit(returned).query)["code"][0],
        code_verifier=step_up.code_verifier,
        redirect_uri=RETURNED,
    )
    claims = {name: value for name, value in answer.claims.items() if name != "auth_time"}

    with pytest.raises(RuleDenied) as refused:
        change_requests.change_request_sign_at_provider(
            actor=alma.user, step_up=step_up, claims=claims
        )

    assert refused.value.code == "step_up_stale"
    assert "did not say when you signed in" in refused.value.detail
    assert not SignOff.objects.filter(signer=alma.user).exists()


def test_a_delegate_who_signs_at_the_provider_signs_on_behalf_of_the_absent_approver(
    alma, waiting, model_risk_approver
):
    """The pending signature keeps the delegation chosen on the sign form: coming back from the
    provider signs as delegate, never silently in the delegate's own name."""
    today = timezone.localdate()
    absence_set(
        actor=model_risk_approver,
        person=model_risk_approver,
        team=Membership.objects.get(user=model_risk_approver, team__slug="model-risk").team,
        delegate=alma.user,
        starts_on=today,
        ends_on=today + timedelta(days=3),
    )
    sent = alma.portal.post(
        f"/releases/change-requests/{waiting.number}/sign/",
        {
            "decision": "approve",
            "content_digest": waiting.content_digest,
            "team": "model-risk",
            "on_behalf_of": model_risk_approver.username,
        },
    )
    assert SignatureStepUp.objects.get().on_behalf_of == model_risk_approver

    alma.through_provider(sent)

    sign_off = SignOff.objects.get(signer=alma.user)
    assert sign_off.on_behalf_of == model_risk_approver
    assert sign_off.auth_time is not None
    assert "as delegate of" in sign_off.meaning
