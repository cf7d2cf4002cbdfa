from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.models import AuditEvent
from portal.models import Membership, ServiceAccount, Team

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        sorted(Team.objects.values_list("slug", "name")),
        sorted(get_user_model().objects.values_list("username", "is_staff")),
        sorted(
            Membership.objects.values_list(
                "user__username", "team__slug", "is_approver", "is_emergency_approver"
            )
        ),
    )


def test_seed_demo_twice_gives_the_same_data():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first, events = snapshot(), AuditEvent.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert snapshot() == first
    assert AuditEvent.objects.count() == events
    teams = dict(first[0])
    assert set(teams) >= {"data-science", "model-risk", "release-management", "platform-operations"}
    assert "requester" in out.getvalue() and "gatehouse-demo" in out.getvalue()


def test_seed_demo_gives_the_personas_their_roles():
    call_command("seed_demo", stdout=StringIO())
    roles = {(m.user.username, m.team.slug): m.roles for m in Membership.objects.all()}
    assert roles[("risk", "model-risk")] == ["member", "approver"]
    assert roles[("changemgr", "release-management")] == ["member", "emergency_approver"]
    assert roles[("peer", "data-science")] == ["member"]


def test_create_service_account_prints_the_token_last(org):
    out = StringIO()
    call_command(
        "create_service_account",
        "deployer",
        team="platform-operations",
        scopes="deployments:write,gate:read",
        stdout=out,
    )
    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith("gh_")
    account = ServiceAccount.objects.get(name="deployer")
    assert account.scopes == ["deployments:write", "gate:read"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/whoami/").json()["name"] == "deployer"


@pytest.mark.parametrize(
    ("team", "scopes", "message"),
    [("nope", "gate:read", "No team"), ("model-risk", "gate:write", "Unknown scope")],
)
def test_create_service_account_refuses_bad_input(org, team, scopes, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_service_account", "x", team=team, scopes=scopes, stdout=StringIO())
    assert not ServiceAccount.objects.filter(name="x").exists()
