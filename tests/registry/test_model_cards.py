"""Issue 16: CI sends a model card with the build; the version page shows it and how it differs
from the card of the version live in production; like the rest of a version, it never changes."""

import pytest

from releases.builders import deployment_row
from releases.services import policy

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/fraud-score/versions/"
CARD = {
    "purpose": "Score card-not-present fraud.",
    "training_data": "card-payments 2026-08",
    "training_period": "2025-09 to 2026-08",
    "evaluation": [{"metric": "recall", "value": 0.81, "dataset": "card-payments 2026-10"}],
    "limitations": "Not for merchant onboarding.",
    "monitoring": "Weekly drift on merchant features.",
}


def payload(builds, version: str, card: dict) -> dict:
    return {
        "version": version,
        "repository": builds["1.0"].repository.url,
        "commit_sha": f"{version.replace('.', '')}".ljust(40, "a"),
        "build_id": f"pipeline-{version}",
        "artifact_uri": f"s3://models/fraud-score/{version}.tar.gz",
        "artifact_sha256": f"{version.replace('.', '')}".ljust(64, "b"),
        "model_card": card,
    }


def test_a_card_comes_with_the_build_is_checked_and_never_changes(builds, ci):
    client = ci.client()
    first = client.post(URL, payload(builds, "3.0", CARD), format="json")
    assert first.status_code == 201 and first.json()["model_card"] == CARD
    again = client.post(URL, payload(builds, "3.0", CARD), format="json")
    assert again.status_code == 200
    changed = client.post(
        URL, payload(builds, "3.0", {**CARD, "limitations": "None."}), format="json"
    )
    assert changed.status_code == 409 and "model_card" in changed.json()["detail"]

    bad = client.post(URL, payload(builds, "3.1", {"colour": "red"}), format="json")
    assert bad.status_code == 400 and "model_card.colour" in bad.json()
    thin = client.post(
        URL, payload(builds, "3.2", {"evaluation": [{"metric": "auc"}]}), format="json"
    )
    assert thin.status_code == 400 and "model_card.evaluation.1" in thin.json()


def test_a_card_holding_a_number_the_trail_cannot_keep_exactly_is_refused(builds, ci):
    """An evaluation holds what a build's metrics hold: the audit trail's canonical JSON keeps
    integers exactly up to 2**53 - 1, and a larger one was a 500 (found by the schema's
    fuzzing)."""
    client = ci.client()
    for value in ({"counts": 2**60}, 2**53):
        evaluation = [{"metric": "rows", "value": value, "dataset": "all"}]
        refused = client.post(
            URL, payload(builds, "3.3", {"evaluation": evaluation}), format="json"
        )
        assert refused.status_code == 400
        assert "(2**53 - 1)" in refused.json()["model_card.evaluation.1"][0]
    deeper = [{"metric": "rows", "value": {"counts": [1]}, "dataset": "all"}]
    refused = client.post(URL, payload(builds, "3.3", {"evaluation": deeper}), format="json")
    assert refused.status_code == 400 and "model_card.evaluation.1" in refused.json()
    assert not builds["1.0"].model.versions.filter(version="3.3").exists()
    exact = [{"metric": "rows", "value": {"counts": 2**53 - 1}, "dataset": "all"}]
    kept = client.post(URL, payload(builds, "3.3", {"evaluation": exact}), format="json")
    assert kept.status_code == 201


def test_the_version_page_shows_the_card_and_its_difference_from_production(
    builds, ci, envs, login, requester
):
    client = ci.client()
    live = client.post(URL, payload(builds, "3.0", CARD), format="json").json()
    candidate = {**CARD, "limitations": "Not for merchant onboarding or crypto."}
    client.post(URL, payload(builds, "3.1", candidate), format="json")
    prod = envs["prod"]
    policy.environment_update(
        actor=None, environment=prod, rank=prod.rank, description="", is_production=True
    )
    deployment_row(environment=prod, model_version=builds["1.0"].model.versions.get(pk=live["id"]))

    page = login(requester).get("/registry/models/fraud-score/versions/3.1/").content.decode()
    assert 'data-testid="model-card"' in page and "Weekly drift on merchant features." in page
    assert "Against 3.0, live in production" in page
    assert "Not for merchant onboarding or crypto." in page and "limitations" in page
    same = login(requester).get("/registry/models/fraud-score/versions/3.0/").content.decode()
    assert "Against 3.0" not in same
