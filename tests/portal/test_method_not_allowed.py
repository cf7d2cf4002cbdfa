"""A page asked with a method it does not take answers a 405 page that says what to do instead,
with the `Allow` header; the API keeps DRF's JSON answer."""

import pytest
from django.urls import reverse, reverse_lazy

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "allow", "way_back"),
    [
        (reverse_lazy("sign-out-everywhere"), "POST", reverse_lazy("profile")),
        # `/absences/7/` names no page: the way back skips it for the list.
        (
            reverse_lazy("organisation:absence-cancel", args=[7]),
            "POST",
            reverse_lazy("organisation:absences"),
        ),
        # A class-based view, with its own `Allow`.
        (reverse_lazy("logout"), "POST, OPTIONS", "/"),
    ],
)
def test_a_button_address_opened_as_a_page_says_where_the_button_is(
    login, requester, url, allow, way_back
):
    response = login(requester).get(url)

    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in response
    page = response.content.decode()
    assert "This address only accepts a form submission" in page
    assert f'Go back to <a href="{way_back}">' in page
    assert f"Methods this address accepts: {allow}." in page


def test_a_page_to_read_asked_with_post_says_to_open_it(login, requester):
    response = login(requester).post(reverse("profile"))

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    page = response.content.decode()
    assert "This address is a page to read: it does not accept a POST request." in page
    assert f'Open <a href="{reverse("profile")}">' in page
    assert "Methods this address accepts: GET, HEAD." in page


def test_a_read_only_page_still_answers_get_and_head(login, requester):
    client = login(requester)

    assert client.get(reverse("profile")).status_code == 200
    assert client.head(reverse("profile")).status_code == 200


def test_the_api_keeps_its_json_405(ci):
    response = ci.client().get(reverse("api-gate"))

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json()["detail"] == 'Method "GET" not allowed.'
