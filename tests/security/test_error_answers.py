"""Errors never show a stack trace: an unknown URL under /api/ answers JSON that tools can
parse, the pages answer the site's own 404, and an unexpected error in the API is JSON too."""

import pytest
from django.test import Client
from django.urls import path

from portal import urls as root_urls


def test_an_unknown_api_url_answers_json(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": "No such API resource: /api/docs/ lists the API's paths.",
    }


@pytest.mark.django_db
def test_an_unknown_page_answers_the_site_404(login, requester):
    response = login(requester).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def _explode(request):
    raise RuntimeError("secret internals")


urlpatterns = [
    path("api/v1/explode/", _explode),
    path("explode/", _explode),
]
handler500 = root_urls.handler500


@pytest.mark.urls("tests.security.test_error_answers")
def test_an_unexpected_error_never_shows_a_stack_trace(requester):
    client = Client(raise_request_exception=False)
    client.force_login(requester)
    response = client.get("/api/v1/explode/")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    page = client.get("/explode/")
    assert page.status_code == 500
    for answer in (response, page):
        assert b"secret internals" not in answer.content
        assert b"Traceback" not in answer.content
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_nul_character_in_a_query_string_is_a_400_not_a_500(ci):
    """Found by the fuzzing: PostgreSQL refuses NUL in a query, so a filter passing it on
    answered 500."""
    response = ci.client().get("/api/v1/datasets/?name=a%00b")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/v1/environments/pr%00d/live/", "/api/v1/change-requests/CR-1%00/"]
)
def test_a_nul_character_in_a_path_names_nothing(ci, url):
    response = ci.client().get(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_a_nul_character_in_a_page_address(login, requester):
    client = login(requester)
    assert client.get("/registry/?q=%00").status_code == 400
    assert client.get("/registry/models/fr%00aud/").status_code == 404
