import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry import hooks
from registry.builders import AUTHORS, commit_id, digest
from tests.registry import helpers

pytestmark = pytest.mark.django_db


def register_versions(count: int, *, model: str = "credit-scoring", start: int = 0):
    return [
        helpers.register_version(
            model=model,
            version=f"1.{index}.0",
            artifact_sha256=digest(f"{model} {index}"),
            build_id=str(5000 + index),
            datasets=[] if index % 2 else [{"name": "loans", "version": "2026-11-01"}],
        )
        for index in range(start, start + count)
    ]


@pytest.fixture
def live_in_test():
    """A stand-in for the releases app's provider: every other version is live in test."""
    calls = []

    def provider(versions):
        calls.append(len(versions))
        return {v.pk: ["test"] for v in versions if v.version.endswith(("0.0", "2.0"))}

    hooks.register_live_environments_provider(provider)
    yield calls
    hooks.live_environments_providers.remove(provider)


def test_models_page_searches_by_name_team_and_tier(login, requester, model, dataset):
    helpers.register_model(name="fraud-detection", owner_team="model-risk", risk_tier=2)
    helpers.register_model(name="churn-forecast", risk_tier=3)
    client = login(requester)
    url = reverse("registry:models")

    def names(**query):
        response = client.get(url, query)
        assert response.status_code == 200
        return [m.name for m in response.context["models"]]

    assert names() == ["churn-forecast", "credit-scoring", "fraud-detection"]
    assert names(q="fraud") == ["fraud-detection"]
    assert names(owner_team="data-science") == ["churn-forecast", "credit-scoring"]
    assert names(risk_tier="3") == ["churn-forecast"]
    assert names(owner_team="data-science", risk_tier="1") == ["credit-scoring"]


def test_model_page_shows_versions_with_evidence(login, requester, model, dataset, live_in_test):
    register_versions(3)
    response = login(requester).get(reverse("registry:model", args=["credit-scoring"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert commit_id("commit one")[:10] in html
    assert f'href="{helpers.version_payload()["build_url"]}" rel="noopener">5001</a>' in html
    assert "Reproducible" in html
    assert "Not reproducible: missing training data" in html
    live = {row["version"].version: row["live"] for row in response.context["rows"]}
    assert live == {"1.0.0": ["test"], "1.1.0": [], "1.2.0": ["test"]}
    assert live_in_test == [3]


def test_live_column_is_empty_without_a_provider(login, requester, model, dataset):
    register_versions(2)
    response = login(requester).get(reverse("registry:model", args=["credit-scoring"]))
    assert all(row["live"] == [] for row in response.context["rows"])


def test_version_page_shows_commit_from_the_mirror(login, requester, mirrored, source_repo):
    version = helpers.register_version(
        commit_sha=source_repo.shas[2], params={"max_depth": 6, "eta": 0.1}
    )
    response = login(requester).get(
        reverse("registry:version", args=["credit-scoring", version.version])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Train step 2" in html
    assert "Longer explanation of step 2." in html
    assert AUTHORS[2].name in html
    assert "loans" in html and helpers.dataset_payload()["sha256"][:16] in html
    assert "&quot;max_depth&quot;: 6" in html
    assert "auc" in html and "0.81" in html
    assert version.env_lock_sha256 in html
    assert "Reproducible" in html


def test_version_page_without_mirror_names_missing_parts(login, requester, model, dataset):
    helpers.register_version(datasets=[], env_lock_sha256="")
    response = login(requester).get(reverse("registry:version", args=["credit-scoring", "1.0.0"]))
    html = response.content.decode()
    assert "No local mirror" in html
    assert "missing training data, environment lock" in html


def test_unknown_model_or_version_is_404(login, requester, model):
    client = login(requester)
    assert client.get(reverse("registry:model", args=["ghost"])).status_code == 404
    assert client.get(reverse("registry:version", args=["credit-scoring", "9"])).status_code == 404


def test_datasets_page(login, requester, model, dataset):
    helpers.register_version()
    helpers.register_dataset(name="transactions", sha256=digest("tx"))
    response = login(requester).get(reverse("registry:datasets"), {"q": "loan"})
    assert [(d.name, d.version_count) for d in response.context["datasets"]] == [("loans", 1)]


def test_pages_need_sign_in(client, model):
    for url in [reverse("registry:models"), reverse("registry:ci-helper")]:
        assert client.get(url).status_code == 302


def test_ci_helper_is_served_for_download(login, requester):
    response = login(requester).get(reverse("registry:ci-helper"))
    assert response.status_code == 200
    assert 'attachment; filename="gatehouse_ci.py"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("#!/usr/bin/env python3")
    assert "GATEHOUSE_TOKEN" in body


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_model_and_version_pages_query_counts_stay_flat(
    login, requester, model, dataset, live_in_test
):
    client = login(requester)
    helpers.register_model(name="small")
    register_versions(5, model="small")
    register_versions(50)
    model_small = count_queries(client, reverse("registry:model", args=["small"]))
    model_large = count_queries(client, reverse("registry:model", args=["credit-scoring"]))
    assert model_small == model_large
    version_small = count_queries(client, reverse("registry:version", args=["small", "1.0.0"]))
    version_large = count_queries(
        client, reverse("registry:version", args=["credit-scoring", "1.49.0"])
    )
    assert version_small == version_large
    list_small = count_queries(client, reverse("registry:models") + "?q=small")
    list_all = count_queries(client, reverse("registry:models"))
    assert list_small == list_all
