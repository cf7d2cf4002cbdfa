"""Shared fixtures: the personas of the product, built the way the demo builds them, and the
records most tests start from (the three environments, a build, a filed change, a clock), built
by `registry.builders` and `releases.builders` as the demo and the benchmarks build them.

Audit rows are append-only, so the flush that ends a transactional test leaves the audit tables
alone (see `flush_keeps_the_audit_trail`): such tests compare audit sequence numbers relative to
where they started, never absolute ones. Mark them
`@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)`.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from git import Actor
from rest_framework.test import APIClient

from organisation import services
from organisation.demo import DEMO_PASSWORD, seed_organisation
from portal.models import Scope, ServiceAccount, Team
from registry import services as registry
from registry.builders import build_register, repository_with_mirror, training_commits
from registry.models import ModelVersion, RegisteredModel
from releases.builders import Clock, change_fields, environments_create, file_change, sign
from releases.models import ChangeRequest, Environment
from releases.services import policy
from releases.services.change_requests import change_request_file

pytest_plugins = [
    "tests.artifact_stores",
    "tests.integrations.mlflow_server",
    "tests.kubernetes_standin",
]

# Every app stays available (None), so template tags and content types of all apps work in
# transactional tests; the name says what the marker is for.
TRANSACTIONAL_APPS = None
APPEND_ONLY_TABLES = frozenset(
    {"audit_auditevent", "audit_auditcheckpoint", "audit_auditkeyrotation"}
)


@pytest.fixture(scope="session", autouse=True)
def flush_keeps_the_audit_trail():
    """Transactional tests end with a flush. The audit tables are left out of it (their triggers
    would rightly refuse), and on SQLite the registry's immutability triggers are lifted for the
    flush only and put back as they were. Test harness only: the product never deletes."""
    operations = type(connection.ops)
    original = operations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        tables = [table for table in tables if table not in APPEND_ONLY_TABLES]
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if self.connection.vendor != "sqlite" or not statements:
            return statements
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                f"({', '.join(['%s'] * len(tables))})",
                tables,
            )
            triggers = cursor.fetchall()
        lifted = [f'DROP TRIGGER IF EXISTS "{name}"' for name, _ in triggers]
        restored = [
            sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1) for _, sql in triggers
        ]
        return lifted + list(statements) + restored

    operations.sql_flush = sql_flush
    yield
    operations.sql_flush = original


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


# The persona fixtures, by the demo login each one is (organisation/demo.py, PERSONAS).
PERSONAS = {
    "requester": "requester",
    "peer": "peer",
    "model_risk_approver": "risk",
    "release_approver": "release",
    "platform_approver": "platform",
    "change_manager": "changemgr",
    "auditor": "auditor",
    "administrator": "admin",
}


def _persona(name: str, username: str):
    @pytest.fixture(name=name)
    def persona(org):
        return get_user_model().objects.get(username=username)

    return persona


for _name, _username in PERSONAS.items():
    globals()[_name] = _persona(_name, _username)


@dataclass
class ServiceCaller:
    account: ServiceAccount
    secret: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.secret}")
        return client


def make_service_caller(
    team: Team, name: str, scopes: list[str], *, granted_teams: tuple[Team, ...] = ()
) -> ServiceCaller:
    account, issued = services.service_account_create(
        actor=None, name=name, team=team, scopes=scopes, granted_teams=granted_teams
    )
    return ServiceCaller(account=account, secret=issued.secret)


@pytest.fixture
def ci(org) -> ServiceCaller:
    """The CI/CD pipeline's service account, with every scope."""
    return make_service_caller(org["data-science"], "ci-pipeline", list(Scope.values))


@pytest.fixture
def service_caller(org):
    """Make a service account with just the scopes a test names, of Data Science, which owns the
    tests' models (a token acts only on its team's models: rule 15)."""
    counter = iter(range(1000))

    def make(*scopes: str) -> ServiceCaller:
        return make_service_caller(org["data-science"], f"svc-{next(counter)}", list(scopes))

    return make


@pytest.fixture
def login(client, password):
    """Sign a persona in on the Django test client."""

    def sign_in(user):
        assert client.login(username=user.username, password=password)
        return client

    return sign_in


@pytest.fixture
def clock() -> Clock:
    return Clock(now=timezone.now().replace(microsecond=0))


@pytest.fixture
def django_clock(monkeypatch, clock) -> Clock:
    """Pages, the API and the registry take no time from their caller, so tests that move time
    through them move Django's clock with the test clock (set `.now` to stop it elsewhere)."""
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def envs(org) -> dict[str, Environment]:
    """dev (no change request), test (peer review only), prod (peer review, three teams, seven
    days of soak in test): the demo's environments."""
    return environments_create()


@pytest.fixture
def version(org) -> ModelVersion:
    return build_register("fraud-detector", "1.0.0")


@pytest.fixture
def fraud(org) -> RegisteredModel:
    return registry.model_register(actor=None, name="fraud-score", owner_team="data-science")[0]


@pytest.fixture
def builds(fraud) -> dict[str, ModelVersion]:
    return {number: build_register(fraud.name, number) for number in ("1.0", "1.1", "1.2")}


@pytest.fixture
def prod_signers(peer, model_risk_approver, release_approver, platform_approver) -> list:
    """Peer review, then one approver per approval team of prod."""
    return [peer, model_risk_approver, release_approver, platform_approver]


@pytest.fixture
def approved_for_test(envs, builds, requester, peer, clock):
    """Have one of `builds` approved for test (the peer's review), its window open from the
    clock's now."""

    def approve(number: str) -> ChangeRequest:
        return file_change(
            model_version=builds[number],
            environment=envs["test"],
            requester=requester,
            signers=[peer],
            window_start=clock.now,
        )

    return approve


@pytest.fixture
def new_change(requester, envs, version):
    """File (create and submit) a change request for `version` as the requester; prod by
    default, with the fields a test overrides (even to wrong values)."""

    def file(environment: str = "prod", actor=None, **overrides) -> ChangeRequest:
        fields = change_fields(version, envs[environment], **overrides)
        return change_request_file(actor=actor or requester, **fields)

    return file


@pytest.fixture
def filed_change(new_change) -> ChangeRequest:
    """A prod change the requester filed, waiting for the peer's review."""
    return new_change()


@pytest.fixture
def approved(new_change, prod_signers) -> ChangeRequest:
    """A prod change that went through peer review and all three teams."""
    change_request = new_change()
    for signer in prod_signers:
        sign(signer, change_request)
    change_request.refresh_from_db()
    return change_request


@pytest.fixture
def mirrored_builds(org, tmp_path, model_risk_approver):
    """fraud-score 2.0 and 2.1 from commits in a mirrored repository; 2.1's commit is by the
    Model Risk approver herself."""
    risk_author = Actor(model_risk_approver.get_full_name(), model_risk_approver.email)
    commits = [*training_commits(1), *training_commits(1, authors=[risk_author], start=1)]
    shas = repository_with_mirror(tmp_path / "source", commits)
    return {
        "2.0": build_register("fraud-score", "2.0", commit_sha=shas[0]),
        "2.1": build_register("fraud-score", "2.1", commit_sha=shas[1]),
    }


@pytest.fixture
def dev_needs_validation(envs):
    """dev, which needs no change request, asks for a validation: the gate's answer there is
    the model-risk rules alone."""
    policy.environment_policy_change(
        actor=None,
        environment=envs["dev"],
        approval_teams=[],
        needs_change_request=False,
        needs_peer_review=False,
        requires_validation=True,
    )
    return envs["dev"]
