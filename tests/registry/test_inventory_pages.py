"""The model inventory page shows 50 models at a time, by risk tier then name, with next and
previous links that keep the filters; its counts and its downloads cover every model the filters
select, and a cursor it did not write gives the first page."""

import csv
import html
import io
import re
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from registry.builders import build_register
from registry.model_risk import model_inventory_update
from registry.models import LifecycleStatus, RegisteredModel
from releases.builders import deployment_row
from tests.registry import helpers

pytestmark = pytest.mark.django_db

PAGE = "/registry/inventory/"


@pytest.fixture
def hundred_and_twenty(org) -> list[RegisteredModel]:
    """120 models whose tiers do not follow their names, owned half by Data Science and half by
    Model Risk; in the inventory's order."""
    models = [
        helpers.register_model(
            name=f"model-{index:03d}",
            risk_tier=3 - index % 3,
            owner_team="model-risk" if index % 2 else "data-science",
        )
        for index in range(120)
    ]
    return sorted(models, key=lambda model: (model.risk_tier, model.name))


def rows_shown(page: str) -> dict[str, str]:
    """Each row of the inventory table by the name of the model it shows, in order."""
    if 'data-testid="inventory"' not in page:
        return {}
    table = page.split('data-testid="inventory"', 1)[1].split("</table>", 1)[0]
    return {
        re.search(r'<a href="/registry/models/([-\w]+)/">', row)[1]: row
        for row in table.split("<tr>")[2:]
    }


def names_shown(page: str) -> list[str]:
    return list(rows_shown(page))


def test_the_pages_walk_the_inventory_50_at_a_time_forward_and_back(
    hundred_and_twenty, auditor, login
):
    client = login(auditor)
    names = [model.name for model in hundred_and_twenty]

    def get(query: str = "") -> str:
        response = client.get(PAGE + query)
        assert response.status_code == 200
        return response.content.decode()

    first = get()
    assert names_shown(first) == names[:50]
    assert "120 models match" in first
    assert helpers.page_link(first, "prev") is None
    second = get(helpers.page_link(first, "next"))
    assert names_shown(second) == names[50:100]
    last = get(helpers.page_link(second, "next"))
    assert names_shown(last) == names[100:]
    assert helpers.page_link(last, "next") is None
    back = get(helpers.page_link(last, "prev"))
    assert names_shown(back) == names[50:100]
    again = get(helpers.page_link(back, "prev"))
    assert names_shown(again) == names[:50]
    assert helpers.page_link(again, "prev") is None
    assert helpers.page_link(again, "next") == helpers.page_link(first, "next")


def test_paging_keeps_the_filters(hundred_and_twenty, auditor, login):
    client = login(auditor)
    owned = [model.name for model in hundred_and_twenty if model.owner_team.slug == "model-risk"]
    first = client.get(PAGE, {"owner_team": "model-risk"}).content.decode()
    assert names_shown(first) == owned[:50]
    assert f"{len(owned)} models match" in first
    following = helpers.page_link(first, "next")
    assert "owner_team=model-risk" in following
    second = client.get(PAGE + following).content.decode()
    assert names_shown(second) == owned[50:]
    assert helpers.page_link(second, "next") is None
    back = client.get(PAGE + helpers.page_link(second, "prev")).content.decode()
    assert names_shown(back) == owned[:50]


def test_the_downloads_list_every_model_the_filters_select(hundred_and_twenty, auditor, login):
    client = login(auditor)
    names = sorted(model.name for model in hundred_and_twenty)
    first = client.get(PAGE).content.decode()
    second = client.get(PAGE + helpers.page_link(first, "next")).content.decode()
    csv_link = html.unescape(re.search(r'href="(/registry/inventory\.csv[^"]*)"', second)[1])
    assert "after=" not in csv_link
    rows = list(csv.reader(io.StringIO(client.get(csv_link).content.decode())))
    assert sorted(row[0] for row in rows[1:]) == names
    sheet = load_workbook(io.BytesIO(client.get("/registry/inventory.xlsx").content)).active
    assert sorted(row[0] for row in sheet.iter_rows(min_row=2, values_only=True)) == names
    filtered = client.get("/registry/inventory.csv", {"owner_team": "model-risk"})
    owned = [model.name for model in hundred_and_twenty if model.owner_team.slug == "model-risk"]
    assert sorted(row[0] for row in csv.reader(io.StringIO(filtered.content.decode()))) == sorted(
        ["model", *owned]
    )


@pytest.mark.parametrize(
    "query",
    [
        {"after": "nonsense"},
        {"after": "4.model-001"},
        {"after": "1."},
        {"after": "1.model-001\n"},
        {"after": "1." + "m" * 101},
        {"before": "2.model/001"},
        # Well formed, but no model lies beyond them: nothing to show, so the first page.
        {"after": "3.zzz"},
        {"before": "1.a"},
    ],
)
def test_a_cursor_the_page_did_not_write_gives_the_first_page(
    hundred_and_twenty, auditor, login, query
):
    response = login(auditor).get(PAGE, query)
    assert response.status_code == 200
    page = response.content.decode()
    assert names_shown(page) == [model.name for model in hundred_and_twenty[:50]]
    assert helpers.page_link(page, "prev") is None


def test_the_lapsed_count_covers_every_page_and_each_row_says_what_runs(
    hundred_and_twenty, envs, model_risk_approver, auditor, login
):
    """The two models that lapsed sort onto the last page; the first page still counts them."""
    *_, quiet, live = hundred_and_twenty
    for model in (quiet, live):
        model_inventory_update(
            actor=model_risk_approver,
            model=model,
            lifecycle_status=LifecycleStatus.IN_PRODUCTION,
            next_validation_due=date.today() - timedelta(days=2),
        )
    deployment_row(environment=envs["prod"], model_version=build_register(live.name, "4.2"))
    client = login(auditor)
    first = client.get(PAGE).content.decode()
    assert "2 in production with their validations lapsed" in first
    assert 'data-testid="lapsed"' not in first
    second = client.get(PAGE + helpers.page_link(first, "next")).content.decode()
    rows = rows_shown(client.get(PAGE + helpers.page_link(second, "next")).content.decode())
    assert 'data-testid="lapsed"' in rows[quiet.name] and "live:" not in rows[quiet.name]
    assert 'data-testid="lapsed"' in rows[live.name] and "live: 4.2 in prod" in rows[live.name]
    assert sum('data-testid="lapsed"' in row for row in rows.values()) == 2
