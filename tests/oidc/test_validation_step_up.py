"""Rule 6 for validators who sign in only at the bank's identity provider (no password here):
concluding an opened validation sends them to sign in there again, and the validation is
concluded only on an answer that confirms this conclusion, by its validator, just now — the same
rule as a change request's sign-off (`organisation.step_up`). Against a real provider
(tests/oidc/provider.js); each refusal is a test, and the password route stays for password
accounts."""

from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit.models import AuditEvent
from organisation.demo import DEMO_PASSWORD
from organisation.oidc import step_up_answer
from portal.exceptions import Conflict
from portal.models import Membership, ProviderIdentity
from registry.model_risk import (
    validation_conclude_at_provider,
    validation_open,
    validation_step_up_take,
)
from registry.models import Validation, ValidationStepUp
from tests.oidc.conftest import ALMA, BERT
from tests.oidc.server import PASSWORD_ACR, portal_address

RETURNED = "http://testserver/releases/signature/returned/"
MODEL_PAGE = "/registry/models/fraud-score/"


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _refusal(start: int) -> AuditEvent:
    return AuditEvent.objects.get(seq__gt=start, action="validation.step_up_refused")


@pytest.fixture
def alma(visitor, org):
    """Alma, of Model Risk at the provider, signed in to the portal through it: her account
    has no password."""
    person = visitor(ALMA)
    person.sign_in()
    person.user = ProviderIdentity.objects.get(subject=ALMA.sub).user
    assert not person.user.has_usable_password()
    return person


@pytest.fixture
def opened(alma, mirrored_builds, model_risk_approver) -> Validation:
    """A validation of fraud-score 2.0 that Model Risk opened naming Alma its validator."""
    return validation_open(
        actor=model_risk_approver,
        model=mirrored_builds["2.0"].model,
        versions=["2.0"],
        scope="Back-testing on 2026 Q3.",
        validator=alma.user.username,
    )


def _conclude_form(page) -> str:
    html = page.content.decode()
    start = html.index('data-testid="conclude-opened"')
    return html[start : html.index("</form>", start)]


def _one_step_form(page) -> str:
    html = page.content.decode()
    start = html.index(f'action="{MODEL_PAGE}validations/"')
    return html[start : html.index("</form>", start)]


def _ask_to_conclude(person, validation, outcome="conditions", report=None):
    return person.portal.post(
        f"{MODEL_PAGE}validations/{validation.pk}/conclude/",
        {"outcome": outcome, **({"report": report} if report else {})},
    )


def test_a_validator_without_a_password_concludes_at_the_provider(alma, opened):
    page = alma.portal.get(MODEL_PAGE)
    form = _conclude_form(page)
    assert 'name="password"' not in form
    assert "Sign in again at Bank SSO and sign" in form
    provider = alma.at_provider.provider.issuer
    assert f"form-action 'self' {provider};" in page["Content-Security-Policy"]
    report = SimpleUploadedFile("report.md", b"# Back-testing\nHolds.\n")

    sent = _ask_to_conclude(alma, opened, report=report)

    request = parse_qs(urlsplit(sent["Location"]).query)
    step_up = ValidationStepUp.objects.get()
    assert request["prompt"] == ["login"] and request["max_age"] == ["0"]
    assert request["state"] == [step_up.state] and request["nonce"] == [step_up.nonce]
    assert request["redirect_uri"] == [RETURNED]
    assert (step_up.signer, step_up.validation, step_up.outcome) == (
        alma.user,
        opened,
        "conditions",
    )
    assert Validation.objects.get(pk=opened.pk).is_open
    start = _tail()

    returned = alma.through_provider(sent)

    assert alma.last.asked_to_sign_in
    assert returned["Location"] == MODEL_PAGE
    assert _messages(returned) == ["Validation of fraud-score concluded and signed."]
    concluded = Validation.objects.get(pk=opened.pk)
    assert concluded.outcome == "conditions" and concluded.reauthenticated
    assert [document.name for document in concluded.documents.all()] == ["report.md"]
    event = AuditEvent.objects.get(seq__gt=start, action="validation.concluded")
    assert event.actor_id == str(alma.user.pk)
    assert event.data["reauthenticated_by"] == "identity_provider"
    assert event.data["acr"] == PASSWORD_ACR
    assert event.data["report"]["name"] == "report.md"
    auth_time = datetime.fromisoformat(event.data["auth_time"])
    assert step_up.issued_at.replace(microsecond=0) <= auth_time <= timezone.now()
    step_up.refresh_from_db()
    assert step_up.concluded_at is not None and not step_up.refusal


def test_a_provider_out_of_reach_concludes_nothing_and_says_what_to_do(
    alma, opened, provider_out_of_reach
):
    provider_out_of_reach()
    start = _tail()

    answer = _ask_to_conclude(alma, opened)

    assert _messages(answer) == [
        "Bank SSO cannot be reached; nothing was signed. Try again in a few minutes; if it "
        "stays out of reach, tell an administrator."
    ]
    assert Validation.objects.get(pk=opened.pk).is_open
    assert not ValidationStepUp.objects.exclude(concluded_at=None).exists()
    assert _tail() == start


@pytest.mark.parametrize(
    ("age", "why"),
    [
        (600, "older than GATEHOUSE_OIDC_STEP_UP_SECONDS"),
        (60, "recent, but from before the portal sent the validator there"),
    ],
)
def test_an_earlier_sign_in_at_the_provider_concludes_nothing(alma, opened, age, why):
    start = _tail()

    returned = alma.through_provider(_ask_to_conclude(alma, opened), age=age)

    assert returned["Location"] == MODEL_PAGE
    assert "earlier sign-in" in _messages(returned)[-1], why
    assert Validation.objects.get(pk=opened.pk).is_open
    refusal = _refusal(start)
    assert (refusal.data["validation"], refusal.data["code"]) == (opened.pk, "step_up_stale")
    assert refusal.object_id == str(opened.model_id)
    assert ValidationStepUp.objects.get().refusal == "step_up_stale"


def test_a_replayed_answer_of_the_provider_is_refused(alma, opened):
    sent = _ask_to_conclude(alma, opened)
    answer = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    assert alma.portal.get(portal_address(answer))["Location"] == MODEL_PAGE
    concluded_at = Validation.objects.get(pk=opened.pk).concluded_at
    assert concluded_at is not None
    start = _tail()

    replayed = alma.portal.get(portal_address(answer))

    assert replayed["Location"] == "/"
    assert _messages(replayed)[-1] == (
        "This answer of the identity provider was used already; sign again."
    )
    assert _refusal(start).data["code"] == "step_up_replayed"
    assert Validation.objects.get(pk=opened.pk).concluded_at == concluded_at
    assert AuditEvent.objects.filter(action="validation.concluded").count() == 1


def test_a_replayed_state_with_a_fresh_token_is_refused_by_the_service(alma, opened):
    """Someone who saw a used state and nonce asks the provider again with them: the token is
    genuine and fresh, the pending conclusion is spent — here by a refusal, so the validation
    is still open and a replay would otherwise conclude it."""
    sent = _ask_to_conclude(alma, opened)
    alma.through_provider(sent, age=600)
    spent = ValidationStepUp.objects.get()
    assert spent.refusal == "step_up_stale"
    again = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    answer = step_up_answer(
        code=parse_qs(urlsplit(again).query)["code"][0],
        code_verifier=spent.code_verifier,
        redirect_uri=RETURNED,
    )
    assert answer.claims["nonce"] == spent.nonce

    with pytest.raises(Conflict) as taken:
        validation_step_up_take(actor=alma.user, state=spent.state)
    assert taken.value.code == "step_up_replayed"
    with pytest.raises(Conflict) as concluded:
        validation_conclude_at_provider(actor=alma.user, step_up=spent, claims=answer.claims)
    assert concluded.value.code == "step_up_replayed"
    assert Validation.objects.get(pk=opened.pk).is_open


def test_signing_in_at_the_provider_as_someone_else_concludes_nothing(alma, visitor, opened):
    """Bert signs in at the provider in Alma's browser: his token is genuine and fresh, but it
    does not confirm Alma."""
    visitor(BERT).sign_in()
    sent = _ask_to_conclude(alma, opened)
    answer = alma.at_provider.authorize(sent["Location"], BERT).returned_to
    start = _tail()

    refused = alma.portal.get(portal_address(answer))

    assert "as someone else" in _messages(refused)[-1]
    assert Validation.objects.get(pk=opened.pk).is_open
    assert _refusal(start).data["code"] == "step_up_wrong_signer"
    assert not AuditEvent.objects.filter(action="validation.concluded").exists()


def test_nobody_else_can_take_a_pending_conclusion(alma, visitor, opened):
    sent = _ask_to_conclude(alma, opened)
    answer = alma.at_provider.authorize(sent["Location"], ALMA).returned_to
    bert = visitor(BERT)
    bert.sign_in()

    refused = bert.portal.get(portal_address(answer))

    assert _messages(refused) == [
        "No validation of yours waits for this answer of the identity provider: start signing "
        "again from the model's page."
    ]
    assert ValidationStepUp.objects.get().taken_at is None
    concluded = alma.portal.get(portal_address(answer))
    assert _messages(concluded)[-1] == "Validation of fraud-score concluded and signed."


def test_only_the_named_validator_is_sent_to_the_provider(alma, visitor, opened):
    """Every rule of concluding holds before anyone is sent away: Bert, who is not the
    validator, is refused on the portal and nothing waits at the provider."""
    bert = visitor(BERT)
    bert.sign_in()

    refused = _ask_to_conclude(bert, opened)

    assert refused["Location"] == MODEL_PAGE
    assert "only they conclude it" in _messages(refused)[-1]
    assert not ValidationStepUp.objects.exists()


def test_a_password_account_still_concludes_with_its_password(
    login, mirrored_builds, model_risk_approver, single_sign_on
):
    opened = validation_open(
        actor=model_risk_approver,
        model=mirrored_builds["2.0"].model,
        versions=["2.0"],
        scope="Back-testing on 2026 Q3.",
        validator=model_risk_approver.username,
    )
    client = login(model_risk_approver)
    form = _conclude_form(client.get(MODEL_PAGE))
    assert 'name="password"' in form and "Bank SSO" not in form

    signed = client.post(
        f"{MODEL_PAGE}validations/{opened.pk}/conclude/",
        {"outcome": "approved", "password": DEMO_PASSWORD},
    )

    assert _messages(signed) == ["Validation of fraud-score concluded and signed."]
    assert not Validation.objects.get(pk=opened.pk).is_open
    assert not ValidationStepUp.objects.exists()
    event = AuditEvent.objects.get(action="validation.concluded")
    assert event.data["reauthenticated_by"] == "password" and "auth_time" not in event.data


def test_the_validator_who_left_model_risk_at_the_provider_concludes_nothing(
    alma, opened, single_sign_on
):
    """The roles follow the provider's groups at the signature, as at sign-in; independence is
    then checked again: Alma, out of Model Risk's groups since she was sent there, signs
    nothing."""
    single_sign_on.people(replace(ALMA, groups=[]), BERT)
    start = _tail()

    refused = alma.through_provider(_ask_to_conclude(alma, opened))

    assert "Only a member of Model Risk validates a model" in _messages(refused)[-1]
    assert Validation.objects.get(pk=opened.pk).is_open
    assert not Membership.objects.filter(user=alma.user, team__slug="model-risk").exists()
    assert _refusal(start).data["code"] == "not_model_risk"


def test_an_answer_without_a_sign_in_concludes_nothing(alma, opened):
    _ask_to_conclude(alma, opened)
    step_up = ValidationStepUp.objects.get()

    cancelled = alma.portal.get(
        f"/releases/signature/returned/?error=access_denied&state={step_up.state}"
    )

    assert cancelled["Location"] == MODEL_PAGE
    assert "did not confirm your sign-in; nothing was signed" in _messages(cancelled)[-1]
    assert Validation.objects.get(pk=opened.pk).is_open
    step_up.refresh_from_db()
    assert step_up.taken_at is not None


def test_a_validator_without_a_password_concludes_in_one_step_at_the_provider(
    alma, mirrored_builds
):
    """The one-step form: the validation is opened naming Alma with its finding (audited as
    Model Risk opens one), and concluded when the provider confirms her."""
    form = _one_step_form(alma.portal.get(MODEL_PAGE))
    assert 'name="password"' not in form and "Sign in again at Bank SSO" in form
    start = _tail()

    sent = alma.portal.post(
        f"{MODEL_PAGE}validations/",
        {
            "versions": [mirrored_builds["2.0"].pk],
            "scope": "Stability over 2026 Q3.",
            "outcome": "approved",
            "finding_title": "Drift monitor missing",
            "finding_severity": "low",
            "finding_owner": "requester",
            "finding_due": (timezone.localdate() + timedelta(days=30)).isoformat(),
        },
    )

    validation = Validation.objects.get()
    assert validation.is_open and validation.validator == alma.user
    assert parse_qs(urlsplit(sent["Location"]).query)["state"] == [
        ValidationStepUp.objects.get(validation=validation).state
    ]

    returned = alma.through_provider(sent)

    assert _messages(returned) == ["Validation of fraud-score concluded and signed."]
    validation.refresh_from_db()
    assert validation.outcome == "approved" and validation.scope == "Stability over 2026 Q3."
    assert [finding.title for finding in validation.findings.all()] == ["Drift monitor missing"]
    assert list(
        AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", flat=True)
    ) == ["validation.opened", "finding.recorded", "validation.concluded"]
    event = AuditEvent.objects.get(seq__gt=start, action="validation.concluded")
    assert event.data["reauthenticated_by"] == "identity_provider" and event.data["auth_time"]


def test_a_one_step_conclusion_that_breaks_a_rule_opens_nothing(alma, mirrored_builds):
    refused = alma.portal.post(
        f"{MODEL_PAGE}validations/",
        {"versions": [mirrored_builds["2.0"].pk], "scope": "Q3.", "outcome": "maybe"},
    )

    assert refused["Location"] == MODEL_PAGE
    assert "One of approved, conditions, rejected." in _messages(refused)[-1]
    assert not Validation.objects.exists() and not ValidationStepUp.objects.exists()
    assert not AuditEvent.objects.filter(action="validation.opened").exists()
