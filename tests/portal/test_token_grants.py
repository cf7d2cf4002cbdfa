"""What a service account may reach (rule 15) is set by an administrator: the teams granted to it
and the environments it is limited to, through one audited service that the management command
and the admin share."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from organisation import services
from portal.models import ServiceAccount

pytestmark = pytest.mark.django_db

GRANTS_CHANGED = "service_account.grants_changed"


@pytest.fixture
def account(org):
    return services.service_account_create(
        actor=None, name="shared-cd", team=org["platform-operations"], scopes=["gate:read"]
    )[0]


def test_grants_are_set_through_an_audited_service(org, envs, account, administrator):
    services.service_account_grants_set(
        actor=administrator,
        service_account=account,
        teams=[org["model-risk"], org["data-science"]],
        environments=["test", "dev"],
    )
    account.refresh_from_db()
    assert sorted(team.slug for team in account.granted_teams.all()) == [
        "data-science",
        "model-risk",
    ]
    assert account.environments == ["dev", "test"]
    event = AuditEvent.objects.get(action=GRANTS_CHANGED)
    assert event.actor_name == "admin"
    assert event.data["before"] == {"granted_teams": [], "environments": []}
    assert event.data["after"] == {
        "granted_teams": ["data-science", "model-risk"],
        "environments": ["dev", "test"],
    }
    services.service_account_grants_set(
        actor=administrator,
        service_account=account,
        teams=[org["data-science"], org["model-risk"]],
        environments=["dev", "test"],
    )
    assert AuditEvent.objects.filter(action=GRANTS_CHANGED).count() == 1, "unchanged: no event"


@pytest.mark.parametrize(
    ("environments", "message"),
    [(["Prod!"], "not an environment name"), (["staging"], "No environment is named 'staging'")],
)
def test_environment_names_are_checked(envs, account, environments, message):
    with pytest.raises(ValidationError, match=message):
        services.service_account_grants_set(
            actor=None, service_account=account, teams=[], environments=environments
        )
    account.refresh_from_db()
    assert account.environments == []
    assert not AuditEvent.objects.filter(action=GRANTS_CHANGED).exists()


def test_create_service_account_limits_the_token_to_environments(org, envs):
    out = StringIO()
    call_command(
        "create_service_account",
        "deployer",
        team="data-science",
        scopes="deployments:write",
        environments="dev,test",
        grant_teams="model-risk",
        stdout=out,
    )
    account = ServiceAccount.objects.get(name="deployer")
    assert account.environments == ["dev", "test"]
    assert [team.slug for team in account.granted_teams.all()] == ["model-risk"]
    assert "dev, test" in out.getvalue()
    event = AuditEvent.objects.get(action="service_account.created", object_id=str(account.pk))
    assert event.data["environments"] == ["dev", "test"]
    assert event.data["granted_teams"] == ["model-risk"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"environments": "dev,Prod!"}, "not an environment name"),
        ({"environments": "dev,staging"}, "No environment is named 'staging'"),
        ({"grant_teams": "nope"}, "No team with slug 'nope'"),
    ],
)
def test_create_service_account_refuses_unknown_grants(org, envs, options, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "create_service_account",
            "deployer",
            team="data-science",
            scopes="deployments:write",
            stdout=StringIO(),
            **options,
        )
    assert not ServiceAccount.objects.filter(name="deployer").exists()


def admin_form(account, **fields) -> dict:
    """The service account's change form as the admin posts it, with its read-only token row."""
    return {
        "scopes": '["deployments:write", "gate:read"]',
        "is_active": "on",
        "granted_teams": [],
        "environments": "",
        "tokens-TOTAL_FORMS": "1",
        "tokens-INITIAL_FORMS": "1",
        "tokens-MIN_NUM_FORMS": "0",
        "tokens-MAX_NUM_FORMS": "1000",
        "tokens-0-id": str(account.tokens.get().pk),
        "tokens-0-service_account": str(account.pk),
        **fields,
    }


def test_the_admin_edits_grants_through_the_audited_service(
    org, envs, account, login, administrator
):
    client = login(administrator)
    url = f"/admin/portal/serviceaccount/{account.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="granted_teams"' in page.content and b'name="environments"' in page.content
    edit = admin_form(account, granted_teams=[org["data-science"].pk], environments="dev, test")
    assert client.post(url, edit).status_code == 302
    account.refresh_from_db()
    assert [team.slug for team in account.granted_teams.all()] == ["data-science"]
    assert account.environments == ["dev", "test"]
    event = AuditEvent.objects.get(action=GRANTS_CHANGED)
    assert event.actor_name == "admin"
    assert event.data["before"] == {"granted_teams": [], "environments": []}
    assert event.data["after"] == {
        "granted_teams": ["data-science"],
        "environments": ["dev", "test"],
    }

    refused = client.post(url, {**edit, "environments": "dev, staging"})
    assert refused.status_code == 200
    assert b"No environment is named" in refused.content
    account.refresh_from_db()
    assert account.environments == ["dev", "test"]
    assert AuditEvent.objects.filter(action=GRANTS_CHANGED).count() == 1


def test_the_admin_creates_an_account_with_grants(org, envs, login, administrator):
    response = login(administrator).post(
        "/admin/portal/serviceaccount/add/",
        {
            "name": "cd-shared",
            "team": org["platform-operations"].pk,
            "scopes": '["deployments:write"]',
            "is_active": "on",
            "granted_teams": [org["data-science"].pk],
            "environments": "prod",
            "tokens-TOTAL_FORMS": "0",
            "tokens-INITIAL_FORMS": "0",
            "tokens-MIN_NUM_FORMS": "0",
            "tokens-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302
    account = ServiceAccount.objects.get(name="cd-shared")
    assert [team.slug for team in account.granted_teams.all()] == ["data-science"]
    assert account.environments == ["prod"]
    event = AuditEvent.objects.get(action="service_account.created", object_id=str(account.pk))
    assert event.data["granted_teams"] == ["data-science"] and event.data["environments"] == [
        "prod"
    ]
