"""The registry's pages: models, one model with its versions, one version with its evidence,
datasets, and the CI helper for download. Read-only: registration comes from CI."""

import json
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from portal.exceptions import NotFound
from portal.models import Team
from registry import git, hooks, selectors
from registry.reproducibility import reproducibility

CI_HELPER = Path(__file__).resolve().parent / "ci" / "gatehouse_ci.py"


def _found(lookup, **kwargs):
    try:
        return lookup(**kwargs)
    except NotFound as error:
        raise Http404(error.detail) from error


def model_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "q": request.GET.get("q", "").strip(),
        "owner_team": request.GET.get("owner_team", ""),
        "risk_tier": request.GET.get("risk_tier", ""),
    }
    tier = filters["risk_tier"]
    models = selectors.model_list(
        q=filters["q"],
        owner_team=filters["owner_team"],
        risk_tier=int(tier) if tier in {"1", "2", "3"} else None,
    )
    return render(
        request,
        "registry/model_list.html",
        {
            "models": models,
            "filters": filters,
            "teams": Team.objects.order_by("name"),
            "tiers": ["1", "2", "3"],
        },
    )


def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = _found(selectors.model_get, name=name)
    versions = list(selectors.model_versions(model=model))
    live = hooks.live_environments(versions)
    rows = [
        {"version": version, "repro": reproducibility(version), "live": live.get(version.pk, [])}
        for version in versions
    ]
    return render(request, "registry/model_detail.html", {"model": model, "rows": rows})


def version_detail(request: HttpRequest, name: str, version: str) -> HttpResponse:
    found = _found(selectors.model_version_get, model_name=name, version=version)
    return render(
        request,
        "registry/version_detail.html",
        {
            "model": found.model,
            "version": found,
            "repro": reproducibility(found),
            "commit": git.commit_info(found.repository, found.commit_sha),
            "has_mirror": bool(found.repository.mirror_path),
            "live": hooks.live_environments([found]).get(found.pk, []),
            "params": json.dumps(found.params, indent=2, sort_keys=True),
            "metrics": sorted(found.metrics.items()),
        },
    )


def dataset_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    return render(
        request, "registry/dataset_list.html", {"datasets": selectors.dataset_list(q=q), "q": q}
    )


def ci_helper(request: HttpRequest) -> FileResponse:
    """The CI helper script, the same file the repository keeps (docs/ci.md)."""
    return FileResponse(
        CI_HELPER.open("rb"),
        as_attachment=True,
        filename=CI_HELPER.name,
        content_type="text/x-python; charset=utf-8",
    )
