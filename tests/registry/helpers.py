"""The registry tests' payloads, as CI sends them over REST (shared with tests/api), and their
registration through the services."""

import html
import re

from registry import services
from registry.builders import commit_id, digest

REPOSITORY_URL = "https://gitlab.example.com/data-science/credit-models"


def dataset_payload(**overrides) -> dict:
    payload = {
        "name": "loans",
        "version": "2026-11-01",
        "uri": "s3://data/loans/2026-11-01.parquet",
        "sha256": digest("loans 2026-11-01"),
        "rows": 120000,
        "schema_sha256": digest("loans schema v3"),
    }
    return {**payload, **overrides}


def model_payload(**overrides) -> dict:
    payload = {
        "name": "credit-scoring",
        "owner_team": "data-science",
        "description": "Probability of default for retail loans.",
        "risk_tier": 1,
    }
    return {**payload, **overrides}


def version_payload(**overrides) -> dict:
    payload = {
        "version": "1.0.0",
        "repository": REPOSITORY_URL,
        "commit_sha": commit_id("commit one"),
        "ref": "main",
        "build_id": "4711",
        "build_url": "https://gitlab.example.com/data-science/credit-models/-/pipelines/4711",
        "artifact_uri": "s3://models/credit-scoring/1.0.0/model.pkl",
        "artifact_sha256": digest("artifact 1.0.0"),
        "framework": "scikit-learn 1.7",
        "params": {"max_depth": 6},
        "metrics": {"auc": 0.81},
        "datasets": [{"name": "loans", "version": "2026-11-01"}],
        "env_lock_sha256": digest("uv.lock"),
    }
    return {**payload, **overrides}


def register_dataset(**overrides):
    return services.dataset_version_register(actor=None, **dataset_payload(**overrides))[0]


def register_model(**overrides):
    return services.model_register(actor=None, **model_payload(**overrides))[0]


def register_version(model: str = "credit-scoring", **overrides):
    return services.model_version_register(actor=None, model=model, **version_payload(**overrides))[
        0
    ]


def page_link(page: str, rel: str) -> str | None:
    """The query string of a paged list's `rel` link (next or prev), None without one."""
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found[1]) if found else None
