"""Issue 19: a refused submit or cancel in the browser answers 403 (or 409/400) with the message
on the change's page, as the API does, not a 302 that reads as success; read-only pages answer
405 to a POST."""

import pytest
from django.urls import reverse

from releases.states import State

pytestmark = pytest.mark.django_db


def test_a_refused_submit_is_403_with_the_reason_on_the_page(login, peer, requester, filed_change):
    response = login(peer).post(
        reverse("releases:change-request-submit", args=[filed_change.number])
    )

    assert response.status_code == 403
    assert response.context["page"].change_request == filed_change
    assert [str(m) for m in response.context["messages"]] == [
        f"Only the requester of {filed_change.number}, {requester.get_full_name()}, may do "
        "this: ask them, or file a change of your own."
    ]


def test_submitting_twice_is_refused_the_second_time(login, requester, filed_change):
    url = reverse("releases:change-request-submit", args=[filed_change.number])

    response = login(requester).post(url)

    assert response.status_code == 409
    assert "only a draft is submitted" in response.content.decode()
    filed_change.refresh_from_db()
    assert filed_change.state == State.IN_REVIEW


def test_a_refused_cancel_is_403_and_changes_nothing(login, peer, filed_change):
    url = reverse("releases:change-request-cancel", args=[filed_change.number])

    response = login(peer).post(url, {"reason": "I do not like it."})

    assert response.status_code == 403
    assert "or a change manager may cancel it" in response.content.decode()
    filed_change.refresh_from_db()
    assert filed_change.state == State.IN_REVIEW


def test_a_cancel_without_a_reason_is_400(login, requester, filed_change):
    url = reverse("releases:change-request-cancel", args=[filed_change.number])

    response = login(requester).post(url, {"reason": ""})

    assert response.status_code == 400
    filed_change.refresh_from_db()
    assert filed_change.state == State.IN_REVIEW


def test_an_allowed_cancel_still_redirects_to_the_page(login, requester, filed_change):
    url = reverse("releases:change-request-cancel", args=[filed_change.number])

    response = login(requester).post(url, {"reason": "Not needed any more."})

    assert response.status_code == 302
    filed_change.refresh_from_db()
    assert filed_change.state == State.CANCELLED


@pytest.mark.parametrize(
    "name",
    ["dashboard", "notifications", "registry:models", "registry:datasets", "registry:inventory"],
)
def test_read_only_pages_answer_405_to_post(login, requester, name):
    assert login(requester).post(reverse(name)).status_code == 405


def test_the_audit_pages_answer_405_to_post(login, auditor):
    from audit.services import auditor_add

    auditor_add(actor=None, user=auditor)
    client = login(auditor)

    assert client.post(reverse("audit:events")).status_code == 405
    assert client.post(reverse("audit:export-csv")).status_code == 405
    assert client.get(reverse("audit:events")).status_code == 200
