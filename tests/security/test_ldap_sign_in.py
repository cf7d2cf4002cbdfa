"""Optional sign-in through the bank's directory, against a real slapd: the directory's people
sign in with their directory password, their team roles follow the directory's groups (and are
audited like any other membership change), local accounts keep working, and with no
`LDAP_SERVER_URI` nothing of it is switched on."""

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from portal.exceptions import RuleDenied
from portal.ldap_settings import directory_settings
from portal.models import Membership
from portal.team_groups import TeamGroup, parse_team_groups
from registry.builders import build_register
from releases.builders import change_fields, environments_create, sign
from releases.services import change_requests
from tests.security.conftest import ADMIN_DN, SUFFIX

PASSWORD = "correct horse battery staple"
BACKEND = "organisation.ldap_backend.DirectoryBackend"


@pytest.fixture
def bank(directory, settings, org):
    """Alma, an approver of Model Risk in the directory, and the settings that point at it."""
    alma = directory.person("alma", PASSWORD, given="Alma", surname="Risk")
    # groupOfNames needs a member, so each group also lists the directory's administrator.
    approvers = directory.group("risk-approvers", [alma, ADMIN_DN])
    directory.group("risk-members", [alma, ADMIN_DN])
    environ = {
        "LDAP_SERVER_URI": directory.uri,
        "LDAP_USER_DN_TEMPLATE": f"uid=%(user)s,ou=people,{SUFFIX}",
        "LDAP_GROUP_SEARCH_BASE": f"ou=groups,{SUFFIX}",
        "LDAP_TEAM_GROUPS": (
            f"model-risk:approver={approvers};model-risk=cn=risk-members,ou=groups,{SUFFIX}"
        ),
    }
    for name, value in directory_settings(environ).items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        settings.AUTHENTICATION_BACKENDS[0],
        BACKEND,
        *settings.AUTHENTICATION_BACKENDS[1:],
    ]
    return {"alma": alma, "approvers": approvers}


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _sign_in(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_a_directory_user_signs_in_and_takes_their_roles_from_groups(client, bank, org):
    start = _tail()
    response = _sign_in(client, "alma", PASSWORD)
    assert response.status_code == 302
    alma = get_user_model().objects.get(username="alma")
    assert int(client.session["_auth_user_id"]) == alma.pk
    assert client.session["_auth_user_backend"] == BACKEND
    assert (alma.first_name, alma.last_name, alma.email) == ("Alma", "Risk", "alma@bank.example")
    assert not alma.has_usable_password()
    membership = Membership.objects.get(user=alma, team=org["model-risk"])
    assert membership.is_approver and not membership.is_emergency_approver
    changed = AuditEvent.objects.get(seq__gt=start, action="membership.changed")
    assert changed.actor_kind == "system"
    assert changed.data["roles_after"] == ["member", "approver"]
    assert client.get("/").status_code == 200


def test_leaving_the_directory_group_takes_the_role_away(client, directory, bank, org):
    _sign_in(client, "alma", PASSWORD)
    client.logout()
    directory.remove_member(bank["approvers"], bank["alma"])
    start = _tail()

    assert _sign_in(client, "alma", PASSWORD).status_code == 302
    membership = Membership.objects.get(user__username="alma", team=org["model-risk"])
    assert not membership.is_approver
    changed = AuditEvent.objects.get(seq__gt=start, action="membership.changed")
    assert changed.data["roles_before"] == ["member", "approver"]
    assert changed.data["roles_after"] == ["member"]


def test_a_wrong_directory_password_signs_nobody_in(client, bank):
    response = _sign_in(client, "alma", "not her password")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(username="alma").exists()


def test_local_accounts_still_sign_in_beside_the_directory(client, bank, requester, password):
    assert _sign_in(client, "requester", password).status_code == 302
    assert int(client.session["_auth_user_id"]) == requester.pk


def test_the_directory_is_off_without_a_server():
    assert directory_settings({}) == {}
    assert directory_settings({"LDAP_BIND_DN": "cn=x"}) == {}


def test_team_groups_are_read_with_dns_that_contain_equals_signs():
    assert parse_team_groups(
        "risk:approver=CN=A,OU=G,DC=B; data-science=cn=ds,dc=b", variable="LDAP_TEAM_GROUPS"
    ) == [
        TeamGroup(group="cn=a,ou=g,dc=b", team="risk", role="approver"),
        TeamGroup(group="cn=ds,dc=b", team="data-science", role="member"),
    ]
    with pytest.raises(ValueError, match="cannot read"):
        parse_team_groups("risk:owner=cn=a", variable="LDAP_TEAM_GROUPS")


def test_a_directory_approver_signs_with_their_directory_password(client, bank, org):
    """Rule 6 for directory accounts: the password typed again is checked by the directory."""
    environments = environments_create()
    version = build_register("fraud-detector", "1.0.0")
    change_request = change_requests.change_request_file(
        actor=get_user_model().objects.get(username="requester"),
        **change_fields(version, environments["prod"]),
    )
    sign(get_user_model().objects.get(username="peer"), change_request)
    _sign_in(client, "alma", PASSWORD)
    alma = get_user_model().objects.get(username="alma")
    change_request.refresh_from_db()

    def alma_signs(password):
        return change_requests.change_request_sign(
            actor=alma,
            change_request=change_request,
            decision="approve",
            password=password,
            content_digest=change_request.content_digest,
        )

    with pytest.raises(RuleDenied) as refused:
        alma_signs("not her password")
    assert refused.value.code == "reauth_failed"
    sign_off = alma_signs(PASSWORD)
    assert sign_off.team == org["model-risk"] and sign_off.reauthenticated
