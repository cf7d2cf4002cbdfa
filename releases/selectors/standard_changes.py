"""Standard change templates as their pages and the gate read them (issue 18, rule 18)."""

from fnmatch import fnmatchcase
from typing import Any

from django.db.models import Prefetch, QuerySet

from registry import git
from registry.models import ModelVersion
from releases.models import ChangeRequest, StandardChangeTemplate
from releases.states import Kind


def path_within(path: str, globs: list[str]) -> bool:
    """Whether one changed path is one the template allows. `**` spans directories, `*` does
    not (`configs/*.yaml` allows configs/a.yaml, not configs/old/a.yaml)."""
    for glob in globs:
        if glob == "**" or (glob.endswith("/**") and path.startswith(glob[:-2])):
            return True
        if fnmatchcase(path, glob) and glob.count("/") == path.count("/"):
            return True
    return False


def template_diff_read(
    *, template: StandardChangeTemplate, model_version: ModelVersion
) -> dict[str, Any]:
    """What the commits from the template's build to `model_version` touch outside the
    template's paths, read from the repository's git mirror: `known` False (with a `note`) when
    git cannot say, which the gate then refuses rather than guess."""
    base = template.base_version
    if model_version.repository_id != base.repository_id:
        return {"known": False, "outside": [], "note": "the build is from another repository"}
    stat = git.diff_stat(model_version.repository, base.commit_sha, model_version.commit_sha)
    if stat is None:
        return {
            "known": False,
            "outside": [],
            "note": f"the mirror of {model_version.repository.url} does not hold both commits",
        }
    globs = template.path_globs
    return {
        "known": True,
        "outside": [path for path in stat.paths if not path_within(path, globs)],
        "note": f"{len(stat.paths)} path(s) changed since {base}",
    }


def standard_templates() -> QuerySet[StandardChangeTemplate]:
    """Templates with what their pages show: the model, the base build, the environments and
    the change requests made under them (the template's approval first)."""
    return (
        StandardChangeTemplate.objects.select_related("model", "base_version__repository")
        .prefetch_related(
            "environments",
            Prefetch(
                "change_requests",
                queryset=ChangeRequest.objects.select_related(
                    "model_version", "environment", "requester", "risk_policy"
                ).order_by("pk"),
            ),
        )
        .order_by("-created_at", "-pk")
    )


def template_approval(template: StandardChangeTemplate) -> ChangeRequest | None:
    """The change request that approves the template (from the prefetched change requests)."""
    return next(
        (cr for cr in template.change_requests.all() if cr.kind == Kind.STANDARD_TEMPLATE), None
    )


def template_instances(template: StandardChangeTemplate) -> list[ChangeRequest]:
    return [cr for cr in template.change_requests.all() if cr.kind == Kind.STANDARD]
