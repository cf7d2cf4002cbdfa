"""Shared fixtures: the personas of the product, built the way the demo builds them.

Audit rows are append-only, so a transactional test cannot flush the audit tables. Such tests
use `@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)` and compare
audit sequence numbers relative to where they started, never absolute ones.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from portal import services
from portal.demo import DEMO_PASSWORD, seed_organisation
from portal.models import Scope, ServiceAccount, Team

TRANSACTIONAL_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_celery_beat",
    "portal",
    "registry",
    "releases",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password() -> str:
    return DEMO_PASSWORD


@pytest.fixture
def org(db):
    """The demo organisation: four teams and every persona, with their roles."""
    seed_organisation()
    return {team.slug: team for team in Team.objects.all()}


def _user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def requester(org):
    return _user("requester")


@pytest.fixture
def peer(org):
    return _user("peer")


@pytest.fixture
def model_risk_approver(org):
    return _user("risk")


@pytest.fixture
def release_approver(org):
    return _user("release")


@pytest.fixture
def platform_approver(org):
    return _user("platform")


@pytest.fixture
def change_manager(org):
    return _user("changemgr")


@pytest.fixture
def auditor(org):
    return _user("auditor")


@pytest.fixture
def administrator(org):
    return _user("admin")


@dataclass
class ServiceCaller:
    account: ServiceAccount
    secret: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.secret}")
        return client


def make_service_caller(team: Team, name: str, scopes: list[str]) -> ServiceCaller:
    account, issued = services.service_account_create(
        actor=None, name=name, team=team, scopes=scopes
    )
    return ServiceCaller(account=account, secret=issued.secret)


@pytest.fixture
def ci(org) -> ServiceCaller:
    """The CI/CD pipeline's service account, with every scope."""
    return make_service_caller(org["data-science"], "ci-pipeline", list(Scope.values))


@pytest.fixture
def service_caller(org):
    """Make a service account with just the scopes a test names."""
    counter = iter(range(1000))

    def make(*scopes: str) -> ServiceCaller:
        return make_service_caller(org["platform-operations"], f"svc-{next(counter)}", list(scopes))

    return make


@pytest.fixture
def login(client, password):
    """Sign a persona in on the Django test client."""

    def sign_in(user):
        assert client.login(username=user.username, password=password)
        return client

    return sign_in
