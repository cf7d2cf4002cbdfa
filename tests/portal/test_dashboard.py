"""The dashboard shows the panels the apps registered, by position, then the person's teams."""

import pytest

pytestmark = pytest.mark.django_db


def headings(page: str) -> list[str]:
    return [part.split("<", 1)[0].strip() for part in page.split("<h2>")[1:]]


def test_the_panels_show_in_their_order_before_the_teams(login, requester):
    page = login(requester).get("/").content.decode()
    assert headings(page) == ["Waiting for me", "My change requests", "Your teams and roles"]


def test_a_panel_with_nothing_for_the_person_is_left_out(login, model_risk_approver):
    page = login(model_risk_approver).get("/").content.decode()
    assert headings(page) == ["Waiting for me", "Your teams and roles"]
