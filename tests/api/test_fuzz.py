"""Schemathesis against `/api/schema/`: every operation, with generated valid and invalid input,
called with a token that has every scope on the demo's data. No answer may be a server error,
and every answer must match what the schema documents for it (status code, content type,
body). Bounded so that the whole run stays under about three minutes."""

import io

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
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from portal.models import Scope, Team
from releases.models import ChangeRequest, Deployment
from tests.conftest import make_service_caller

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="fuzzed once, on PostgreSQL, to bound the time"
)
EXAMPLES_PER_OPERATION = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Operations only people may call (a token gets 403 before its input is read).
AS_A_PERSON = {"POST /api/v1/change-requests/"}


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
    """Path parameters that name the demo's records, so half the cases reach real objects
    instead of stopping at a 404."""
    change = ChangeRequest.objects.select_related("model_version__model").order_by("pk").first()
    return {
        "name": change.model_version.model.name,
        "version": change.model_version.version,
        "number": change.number,
        "environment": change.environment.name,
        "id": str(Deployment.objects.order_by("-pk").values_list("pk", flat=True).first()),
    }


@pytest.fixture
def requester_session(token) -> dict:
    """The requester's browser session, with its CSRF token: filing a change request is for
    people, so that operation is fuzzed as one."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="requester"))
    client.get("/releases/change-requests/new/")
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    return {"cookies": cookies, "headers": {"X-CSRFToken": cookies["csrftoken"]}}


def test_every_operation_answers_as_documented(application, token, demo_paths, requester_session):
    # Read from the running application, so the fuzzing covers exactly what is served.
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    token_header = {"headers": {"Authorization": f"Bearer {token}"}}
    failures = {}
    for operation in operations:
        credentials = requester_session if operation.label in AS_A_PERSON else token_header
        try:
            _fuzz(operation, credentials, demo_paths)
        except Exception as failure:
            failures[operation.label] = str(failure)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def _fuzz(operation, credentials: dict, demo_paths: dict[str, str]) -> None:
    def on_demo_records(case):
        if case.path_parameters:
            case.path_parameters = {
                name: demo_paths.get(name, value) for name, value in case.path_parameters.items()
            }
        return case

    generated = operation.as_strategy()

    @given(case=st.one_of(generated, generated.map(on_demo_records)))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case):
        case.call_and_validate(**credentials, checks=CHECKS)

    call()
