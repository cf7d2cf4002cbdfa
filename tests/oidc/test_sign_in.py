"""Single sign-on against a real OpenID provider (tests/oidc/provider.js): people sign in at the
bank's provider, their accounts are found by the provider's subject (never by e-mail or
username), their team roles follow the provider's groups at every sign-in (audited like any
membership change), local accounts keep working, and nothing of it is on without OIDC_ISSUER."""

import socket
from dataclasses import replace

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from organisation import services
from organisation.oidc import ProviderError, id_token_claims, provider_endpoints
from portal.models import Membership, ProviderIdentity
from portal.oidc_settings import provider_settings
from tests.oidc.conftest import ALMA, BERT

BACKEND = "organisation.oidc.ProviderBackend"


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _user(person):
    return ProviderIdentity.objects.get(subject=person.sub).user


def test_the_sign_in_page_offers_the_provider(client, single_sign_on):
    page = client.get("/login/?next=/registry/")
    assert page.status_code == 200
    assert b"Sign in with Bank SSO" in page.content
    assert b'href="/oidc/authenticate/?next=/registry/"' in page.content


def test_first_sign_in_creates_the_account_and_maps_groups_to_teams(visitor, org):
    start = _tail()
    alma = visitor(ALMA)

    response = alma.sign_in()

    assert response.status_code == 302 and response["Location"] == "/"
    assert alma.last.asked_to_sign_in
    user = _user(ALMA)
    assert int(alma.portal.session["_auth_user_id"]) == user.pk
    assert alma.portal.session["_auth_user_backend"] == BACKEND
    assert (user.username, user.first_name, user.last_name, user.email) == (
        "alma",
        "Alma",
        "Risk",
        "alma@bank.example",
    )
    assert not user.has_usable_password()
    membership = Membership.objects.get(user=user, team=org["model-risk"])
    assert membership.is_approver and not membership.is_emergency_approver
    assert not Membership.objects.filter(user=user, team=org["release-management"]).exists()
    events = AuditEvent.objects.filter(seq__gt=start).order_by("seq")
    assert [event.action for event in events] == [
        "user.created",
        "user.identity_linked",
        "membership.changed",
    ]
    assert all(event.actor_kind == "system" for event in events)
    assert events[1].data == {
        "user": "alma",
        "issuer": alma.at_provider.provider.issuer,
        "subject": ALMA.sub,
    }
    assert events[2].data["roles_after"] == ["member", "approver"]
    assert alma.portal.get("/").status_code == 200


def test_a_dropped_group_takes_the_role_and_then_the_membership_away(visitor, single_sign_on, org):
    visitor(ALMA).sign_in()
    user = _user(ALMA)
    single_sign_on.people(replace(ALMA, groups=["risk-members"]), BERT)
    start = _tail()

    visitor(ALMA).sign_in()

    membership = Membership.objects.get(user=user, team=org["model-risk"])
    assert not membership.is_approver
    changed = AuditEvent.objects.get(seq__gt=start, action="membership.changed")
    assert changed.data["roles_before"] == ["member", "approver"]
    assert changed.data["roles_after"] == ["member"]

    single_sign_on.people(replace(ALMA, groups=["somebody-elses-group"]), BERT)
    start = _tail()
    visitor(ALMA).sign_in()

    assert not Membership.objects.filter(user=user, team=org["model-risk"]).exists()
    removed = AuditEvent.objects.get(seq__gt=start, action="membership.removed")
    assert removed.actor_kind == "system" and removed.data["team"] == "model-risk"
    assert get_user_model().objects.filter(username__startswith="alma").count() == 1


def test_later_sign_ins_update_the_name_and_address_of_the_same_account(visitor, single_sign_on):
    visitor(ALMA).sign_in()
    single_sign_on.people(replace(ALMA, family_name="Risk-Larsen", email="alma.rl@bank.example"))
    start = _tail()

    visitor(ALMA).sign_in()

    user = _user(ALMA)
    assert (user.last_name, user.email) == ("Risk-Larsen", "alma.rl@bank.example")
    updated = AuditEvent.objects.get(seq__gt=start, action="user.updated")
    assert updated.data["after"] == {"last_name": "Risk-Larsen", "email": "alma.rl@bank.example"}


def test_an_account_with_the_same_email_and_username_is_not_taken_over(visitor, single_sign_on):
    """Whoever controls alma@bank.example at some provider, or is called alma there, does not
    become the local account alma: the provider's subject names a new account of its own."""
    local = services.user_create(
        actor=None, username="alma", password="the-local-password", email="alma@bank.example"
    )
    response = visitor(ALMA).sign_in()

    assert response.status_code == 302
    user = _user(ALMA)
    assert user.pk != local.pk and user.username == "alma-2"
    local.refresh_from_db()
    assert local.check_password("the-local-password")
    assert not ProviderIdentity.objects.filter(user=local).exists()

    # Another subject with Alma's address and name is yet another account.
    single_sign_on.people(replace(ALMA, sub="someone-else", password="theirs"))
    visitor(replace(ALMA, sub="someone-else", password="theirs")).sign_in()
    assert ProviderIdentity.objects.get(subject="someone-else").user.username == "alma-3"


def test_local_accounts_still_sign_in_beside_the_provider(client, single_sign_on, requester):
    assert (
        client.post("/login/", {"username": "requester", "password": "gatehouse-demo"})["Location"]
        == "/"
    )
    assert int(client.session["_auth_user_id"]) == requester.pk


def test_a_wrong_password_at_the_provider_signs_nobody_in(visitor):
    alma = visitor(ALMA)
    with pytest.raises(AssertionError, match="answered 200"):
        alma.sign_in(password="not her password")
    assert "_auth_user_id" not in alma.portal.session
    assert not ProviderIdentity.objects.exists()


def test_a_callback_the_portal_did_not_start_signs_nobody_in(visitor):
    """An answer for another browser's sign-in (its state is not in this session) is refused,
    and so is the same answer twice."""
    alma = visitor(ALMA)
    started = alma.portal.get("/oidc/authenticate/")
    returned = alma.at_provider.authorize(started["Location"], ALMA).returned_to
    stranger = Client()

    refused = stranger.get(returned.removeprefix("http://testserver"))

    assert refused.status_code == 302 and refused["Location"] == "/login/"
    assert "_auth_user_id" not in stranger.session
    assert alma.portal.get(returned.removeprefix("http://testserver")).status_code == 302
    assert "_auth_user_id" in alma.portal.session
    alma.portal.logout()
    assert alma.portal.get(returned.removeprefix("http://testserver"))["Location"] == "/login/"
    assert "_auth_user_id" not in alma.portal.session


def test_an_id_token_for_another_client_or_issuer_or_tampered_is_refused(
    visitor, single_sign_on, settings
):
    """The checks mozilla-django-oidc leaves out (audience, issuer) and the signature, on a
    real token of the provider."""
    token = single_sign_on.id_token(ALMA)
    assert id_token_claims(token)["sub"] == ALMA.sub

    header, payload, signature = token.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    with pytest.raises(ProviderError, match="refused"):
        id_token_claims(f"{header}.{payload}.{flipped}")
    settings.OIDC_RP_CLIENT_ID = "another-client"
    with pytest.raises(ProviderError, match=r"(?i)audience"):
        id_token_claims(token)
    settings.OIDC_RP_CLIENT_ID = single_sign_on.environ()["OIDC_CLIENT_ID"]
    endpoints = provider_endpoints()
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = endpoints.authorization
    settings.OIDC_OP_TOKEN_ENDPOINT = endpoints.token
    settings.OIDC_OP_USER_ENDPOINT = endpoints.userinfo
    settings.OIDC_OP_JWKS_ENDPOINT = endpoints.jwks
    settings.OIDC_OP_ISSUER = "https://elsewhere.example"
    with pytest.raises(ProviderError, match=r"(?i)issuer"):
        id_token_claims(token)


def test_single_sign_on_is_off_without_an_issuer(client, db):
    assert provider_settings({}) == {}
    assert provider_settings({"OIDC_CLIENT_ID": "x"}) == {}
    with pytest.raises(ValueError, match="OIDC_CLIENT_SECRET"):
        provider_settings({"OIDC_ISSUER": "https://sso.example", "OIDC_CLIENT_ID": "x"})
    assert b"Sign in with" not in client.get("/login/").content
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_explicit_endpoints_need_no_discovery(settings, single_sign_on):
    single_sign_on.configure(
        settings,
        OIDC_AUTHORIZATION_ENDPOINT="https://sso.example/authorize",
        OIDC_TOKEN_ENDPOINT="https://sso.example/token",
        OIDC_USERINFO_ENDPOINT="https://sso.example/userinfo",
        OIDC_JWKS_URI="https://sso.example/jwks",
    )
    assert provider_endpoints().token == "https://sso.example/token"


def test_a_provider_that_cannot_be_reached_is_a_message_not_an_error(client, settings, db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    for name, value in provider_settings(
        {
            "OIDC_ISSUER": f"http://127.0.0.1:{closed}",
            "OIDC_CLIENT_ID": "x",
            "OIDC_CLIENT_SECRET": "y",
        }
    ).items():
        setattr(settings, name, value)

    response = client.get("/oidc/authenticate/", follow=True)

    assert response.redirect_chain == [("/login/", 302)]
    assert b"Signing in with single sign-on did not succeed" in response.content
