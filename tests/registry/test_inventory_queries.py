"""Issue 16: the model inventory page and its downloads read in the same number of queries at 3
and at 120 models, with what makes a row dear at both sizes: a model risk owner, upstream models
and datasets, and models in production whose validation lapsed with what runs under them. The
page shows 50 models at a time; a page further on reads what the second does."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.builders import build_register
from registry.model_risk import model_inventory_update
from registry.models import LifecycleStatus
from releases.builders import deployment_row
from tests.registry.helpers import page_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(envs, requester, model_risk_approver):
    """Grow the inventory to `total` models; every third one is in production, live in prod,
    with its validation lapsed."""

    def grow_to(total: int) -> None:
        from registry.models import RegisteredModel

        for index in range(RegisteredModel.objects.count(), total):
            build = build_register(f"model-{index:03d}", "1.0")
            lapsed = index % 3 == 0
            model_inventory_update(
                actor=model_risk_approver,
                model=build.model,
                purpose=f"Model {index}.",
                model_risk_owner=model_risk_approver.username,
                upstream_models=[f"model-{index - 1:03d}"] if index else [],
                upstream_datasets=["transactions"],
                lifecycle_status=LifecycleStatus.IN_PRODUCTION if lapsed else "in_development",
                next_validation_due=date.today() + timedelta(days=-3 if lapsed else 90),
            )
            if lapsed:
                deployment_row(environment=envs["prod"], model_version=build)

    return grow_to


def test_the_inventory_reads_in_the_same_queries_at_3_and_120_models(inventory, auditor, login):
    client = login(auditor)

    def queries(url: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured), response.content.decode(errors="replace")

    def following(page: str) -> str:
        return "/registry/inventory/" + page_link(page, "next")

    urls = ("/registry/inventory/", "/registry/inventory.csv", "/registry/inventory.xlsx")
    inventory(3)
    few = {url: queries(url) for url in urls}
    assert few["/registry/inventory/"][1].count('data-testid="lapsed"') == 1
    assert "live: 1.0 in prod" in few["/registry/inventory/"][1]
    inventory(120)
    many = {url: queries(url) for url in urls}
    first_page = many["/registry/inventory/"][1]
    lapsed_on_first_page = sum(1 for index in range(50) if index % 3 == 0)
    assert first_page.count('data-testid="lapsed"') == lapsed_on_first_page
    lapsed_in_all = sum(1 for index in range(120) if index % 3 == 0)
    assert f"120 models match; {lapsed_in_all} in production with their" in first_page
    assert many["/registry/inventory.csv"][1].count("\n") == 121
    assert {url: count for url, (count, _) in many.items()} == {
        url: count for url, (count, _) in few.items()
    }
    second, second_page = queries(following(first_page))
    last, last_page = queries(following(second_page))
    lapsed_on_last_page = sum(1 for index in range(100, 120) if index % 3 == 0)
    assert 'rel="next"' not in last_page
    assert last_page.count("live: 1.0 in prod") == lapsed_on_last_page
    # A later page asks one more question than the first: whether a page comes before it.
    assert second == last == many["/registry/inventory/"][0] + 1
