"""The change request list in pages of 50, newest first, the filters kept from page to page, in
the same number of queries however many change requests there are."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db
LIST = "/releases/change-requests/"
ROW = re.compile(r'<a href="/releases/change-requests/(CR-\d+)/">')
LINK = re.compile(r'<a class="button" rel="(prev|next)" href="([^"]+)">')


def read(client, url: str) -> tuple[list[str], dict[str, str]]:
    """The numbers listed on the page, and its previous / next links."""
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    links = {rel: href.replace("&amp;", "&") for rel, href in LINK.findall(page)}
    return ROW.findall(page), links


def numbers(changes) -> list[str]:
    return [change.number for change in sorted(changes, key=lambda c: c.pk, reverse=True)]


@pytest.fixture
def many(new_change):
    """120 prod changes, with 5 test changes filed between them."""
    prod, test = [], []
    for n in range(120):
        prod.append(new_change())
        if n % 24 == 0:
            test.append(new_change("test"))
    return numbers(prod), numbers(test)


def test_the_list_pages_by_50_with_its_filters(login, auditor, many):
    prod, test = many
    client = login(auditor)
    first, links = read(client, f"{LIST}?environment=prod&state=")
    assert first == prod[:50]
    assert set(links) == {"next"}
    assert "environment=prod" in links["next"]
    second, links = read(client, LIST + links["next"])
    assert second == prod[50:100]
    assert set(links) == {"prev", "next"}
    assert all("environment=prod" in link for link in links.values())
    third, links = read(client, LIST + links["next"])
    assert third == prod[100:]
    assert set(links) == {"prev"}
    back, links = read(client, LIST + links["prev"])
    assert back == prod[50:100]
    back, links = read(client, LIST + links["prev"])
    assert back == prod[:50]
    assert set(links) == {"next"}
    # Unfiltered, the pages go through every change once.
    everything = sorted(prod + test, key=lambda number: int(number[3:]), reverse=True)
    seen, url = [], LIST
    while url:
        rows, links = read(client, url)
        assert len(rows) == min(50, len(everything) - len(seen))
        seen += rows
        url = LIST + links["next"] if "next" in links else ""
    assert seen == everything


def test_a_short_list_has_no_page_links_and_a_bad_cursor_is_the_first_page(
    login, auditor, new_change
):
    changes = numbers([new_change() for _ in range(3)])
    client = login(auditor)
    assert read(client, LIST) == (changes, {})
    assert read(client, f"{LIST}?older_than=abc&newer_than=-1") == (changes, {})


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_a_page_costs_the_same_queries_at_10_and_at_120_changes(login, auditor, new_change):
    client = login(auditor)
    changes = [new_change() for _ in range(10)]
    cursor = f"?older_than={changes[-1].pk + 1}&environment=prod"
    small = (_queries(client, LIST), _queries(client, LIST + cursor))
    changes += [new_change() for _ in range(110)]
    cursor = f"?older_than={changes[60].pk}&environment=prod"
    assert (_queries(client, LIST), _queries(client, LIST + cursor)) == small
