"""The bank's identity provider for the single sign-on tests (tests/oidc/server.py): started
once, its people and the portal's settings set per test."""

from contextlib import ExitStack

import pytest
from django.test import Client

from organisation.oidc import _discovery
from tests.oidc.server import (
    TESTSERVER,
    LoginPage,
    OpenIDProvider,
    Person,
    ProviderBrowser,
    portal_address,
    provider_running,
)

# Alma approves for Model Risk; Bert for Release Management. Both are only known to the provider.
ALMA = Person(
    sub="5f0c1e2a-alma",
    username="alma",
    password="alma-at-the-provider",
    given_name="Alma",
    family_name="Risk",
    email="alma@bank.example",
    groups=["risk-approvers", "risk-members"],
)
BERT = Person(
    sub="9b7d44e0-bert",
    username="bert",
    password="bert-at-the-provider",
    given_name="Bert",
    family_name="Release",
    email="bert@bank.example",
    groups=["release-approvers"],
)
TEAM_GROUPS = (
    "model-risk:approver=risk-approvers;model-risk=risk-members;"
    "release-management:approver=release-approvers"
)


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory) -> OpenIDProvider:
    with provider_running(tmp_path_factory.mktemp("provider"), [TESTSERVER]) as provider:
        yield provider


@pytest.fixture
def single_sign_on(settings, openid_provider, org) -> OpenIDProvider:
    """Single sign-on on, Alma and Bert at the provider, their groups mapped to teams."""
    openid_provider.configure(settings, OIDC_TEAM_GROUPS=TEAM_GROUPS)
    openid_provider.people(ALMA, BERT)
    return openid_provider


@pytest.fixture
def provider_out_of_reach(settings, openid_provider):
    """Call it, and the provider stops answering (its process paused until the test ends) in a
    portal process that has not read its discovery document yet: every call to it times out."""
    with ExitStack() as stack:

        def gone() -> None:
            settings.OIDC_TIMEOUT = 0.5
            _discovery.cache_clear()
            stack.enter_context(openid_provider.paused())

        yield gone
    _discovery.cache_clear()


class Visitor:
    """A person with a browser: Django's test client for the portal, a `ProviderBrowser` for
    the provider (whose session it keeps, as a browser keeps cookies)."""

    def __init__(self, provider: OpenIDProvider, person: Person):
        self.person = person
        self.portal = Client()
        self.at_provider: ProviderBrowser = provider.browser()
        self.last: LoginPage | None = None

    def through_provider(self, response, **login):
        """Follow a portal redirect to the provider, sign in there if asked, and open the
        address the provider sends the browser back to."""
        assert response.status_code == 302, response
        self.last = self.at_provider.authorize(response["Location"], self.person, **login)
        return self.portal.get(portal_address(self.last.returned_to))

    def sign_in(self, **login):
        return self.through_provider(self.portal.get("/oidc/authenticate/?next=/"), **login)


@pytest.fixture
def visitor(single_sign_on):
    def make(person: Person) -> Visitor:
        return Visitor(single_sign_on, person)

    return make
