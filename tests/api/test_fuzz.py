"""Schemathesis against `/api/schema/` with every check it has, as `st run --checks all` would:
every operation with generated valid input (which must be accepted) and invalid input (which
must be refused with a 4xx), then the schema's links followed as a state machine (a change
request filed, then read, its sign-offs and its deployments). Called with a token that has
every scope on the demo's data; no answer may be a server error or differ from what the schema
documents. Bounded so that the whole run stays under about four minutes.

One narrowing, stated here and in docs/api.md: the positive cases of registering a build leave
the NUL character out of the text they generate. Its params and metrics are objects whose names
are free, and OpenAPI 3.0 has no `propertyNames` to say that a name holds no NUL; PostgreSQL
cannot store one in text or jsonb, so the server refuses it with a 400 on the field (a negative
case, and tests/api/test_registry_api.py, still send one)."""

import io
from contextlib import contextmanager

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import GenerationConfig
from schemathesis.config._operations import OperationConfig
from schemathesis.filters import FilterSet

from portal.models import Scope, Team
from releases.models import ChangeRequest, Deployment
from tests.conftest import make_service_caller

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="fuzzed once, on PostgreSQL, to bound the time"
)
EXAMPLES_PER_OPERATION = 30
STATEFUL_SCENARIOS = 40

load_all_checks()
EVERY_CHECK = CHECKS.get_all()

# Operations only people may call (a token gets 403 before its input is read).
AS_A_PERSON = {"POST /api/v1/change-requests/"}
# Operations with free names in their objects, which OpenAPI 3.0 cannot keep free of NUL.
NUL_FREE_NAMES = {"POST /api/v1/models/{name}/versions/"}


@pytest.fixture
def application(requester_session):
    """Django's WSGI handler, called in this thread on the test's connection: like the test
    client, it must not close that connection at the start and end of each request. (After
    the session is made: the test client puts those signal handlers back when it is done.)"""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    yield WSGIHandler()
    for signal in signals:
        signal.connect(close_old_connections)


@pytest.fixture
def token(db) -> str:
    """The demo's data, and a token with every scope."""
    call_command("seed_demo", stdout=io.StringIO())
    team = Team.objects.get(slug="platform-operations")
    granted = (Team.objects.get(slug="data-science"),)  # the owner of the demo's models
    return make_service_caller(team, "fuzzer", list(Scope.values), granted_teams=granted).secret


@pytest.fixture
def demo_paths(token) -> dict[str, str]:
    """Path parameters that name the demo's records, so half the positive cases reach real
    objects instead of stopping at a 404."""
    change = ChangeRequest.objects.select_related("model_version__model").order_by("pk").first()
    return {
        "name": change.model_version.model.name,
        "version": change.model_version.version,
        "number": change.number,
        "environment": change.environment.name,
        "id": str(Deployment.objects.order_by("-pk").values_list("pk", flat=True).first()),
    }


@pytest.fixture
def requester_session(token) -> dict[str, str]:
    """The requester's browser session as headers (its cookies and CSRF token): filing a change
    request is for people, so that operation is fuzzed as one."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="requester"))
    client.get("/releases/change-requests/new/")
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    return {
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRFToken": cookies["csrftoken"],
    }


@pytest.fixture
def schema(application):
    # Read from the running application, so the fuzzing covers exactly what is served.
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


def test_every_check_holds_for_every_operation(schema, token, demo_paths, requester_session):
    assert len(EVERY_CHECK) >= 14
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures = {}
    for operation in operations:
        headers = (
            requester_session
            if operation.label in AS_A_PERSON
            else {"Authorization": f"Bearer {token}"}
        )
        for mode in GenerationMode:
            try:
                _fuzz(operation, mode, headers, demo_paths)
            except BaseException as failure:  # schemathesis reports in a BaseExceptionGroup
                failures[f"{operation.label} ({mode})"] = str(failure)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_links_between_operations_hold(schema, token, requester_session):
    """Filing a change request links to reading it, its sign-offs and its deployments; every
    check runs on each step, the stateful ones (use after free, resource availability)
    included."""
    base = schema.as_state_machine()
    assert base.schema.statistic.transitions.total >= 3
    token_headers = {"Authorization": f"Bearer {token}"}

    class Scenario(base):
        def get_call_kwargs(self, case):
            label = case.operation.label
            return {"headers": requester_session if label in AS_A_PERSON else token_headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                checks=EVERY_CHECK,
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Scenario.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=4,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )


def _fuzz(operation, mode: GenerationMode, headers: dict, demo_paths: dict[str, str]) -> None:
    if mode == GenerationMode.POSITIVE and operation.label in NUL_FREE_NAMES:
        with _nul_left_out(operation):
            _fuzz_cases(operation, mode, headers, demo_paths)
    else:
        _fuzz_cases(operation, mode, headers, demo_paths)


@contextmanager
def _nul_left_out(operation):
    """schemathesis's `allow_x00 = false` for this one operation while its cases are drawn."""
    only_this = FilterSet()
    only_this.include(lambda context: context.operation.label == operation.label)
    narrowed = OperationConfig(filter_set=only_this, generation=GenerationConfig(allow_x00=False))
    configured = operation.schema.config.operations.operations
    configured.append(narrowed)
    try:
        yield
    finally:
        configured.remove(narrowed)


def _fuzz_cases(operation, mode: GenerationMode, headers: dict, demo_paths: dict[str, str]) -> None:
    def on_demo_records(case):
        if case.path_parameters:
            case.path_parameters = {
                name: demo_paths.get(name, value) for name, value in case.path_parameters.items()
            }
        return case

    generated = operation.as_strategy(generation_mode=mode)
    # A negative case keeps its invalid path parameters: a demo record's name would mend them.
    cases = generated if mode == GenerationMode.NEGATIVE else generated.map(on_demo_records)

    @given(case=st.one_of(generated, cases))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case):
        case.call_and_validate(headers=headers, checks=EVERY_CHECK)

    call()
