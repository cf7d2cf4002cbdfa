import pytest
from django.urls import reverse

from audit.models import AuditEvent
from portal.models import Membership

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/?next=/admin/"])
def test_pages_require_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_page_is_public_and_works(client, requester, password):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "requester", "password": password})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_wrong_password_shows_an_error(client, requester):
    response = client.post(reverse("login"), {"username": "requester", "password": "nope"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The username or the password is not right (both are case-sensitive)" in page
    assert "An administrator resets a forgotten password" in page


def test_dashboard_lists_teams_and_roles(login, model_risk_approver):
    response = login(model_risk_approver).get("/")
    assert response.status_code == 200
    assert b"Model Risk" in response.content
    assert b"Approver" in response.content


def test_sign_out(login, requester):
    client = login(requester)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_admin_loads_for_the_administrator(login, administrator):
    client = login(administrator)
    for url in [
        "/admin/",
        "/admin/portal/team/",
        "/admin/portal/membership/",
        "/admin/portal/serviceaccount/",
        "/admin/portal/servicetoken/",
    ]:
        assert client.get(url).status_code == 200, url


def test_admin_membership_change_goes_through_the_service(login, administrator, org, peer):
    client = login(administrator)
    membership = Membership.objects.get(user=peer, team=org["data-science"])
    response = client.post(
        f"/admin/portal/membership/{membership.pk}/change/",
        {"is_approver": "on", "is_emergency_approver": ""},
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.is_approver
    event = AuditEvent.objects.filter(action="membership.changed").first()
    assert event.actor_name == "admin"
    assert event.data["roles_after"] == ["member", "approver"]


def test_admin_refused_to_non_staff(login, requester):
    assert login(requester).get("/admin/").status_code == 302
