"""Whether a model version can be rebuilt: "not versioning data means not versioning your code".

A version is reproducible when its code (commit), its build (id and link), its artifact digest,
the digest of every training dataset and its environment lock are all recorded. The caller
prefetches `datasets` so a page of versions costs no extra query per row.
"""

import re
from dataclasses import dataclass

from registry.models import ModelVersion

HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Part:
    key: str
    label: str
    recorded: bool


@dataclass(frozen=True)
class Reproducibility:
    parts: tuple[Part, ...]

    @property
    def reproducible(self) -> bool:
        return all(part.recorded for part in self.parts)

    @property
    def missing(self) -> list[str]:
        """Stable keys of what is missing, for the API."""
        return [part.key for part in self.parts if not part.recorded]

    @property
    def missing_labels(self) -> list[str]:
        return [part.label for part in self.parts if not part.recorded]


def reproducibility(version: ModelVersion) -> Reproducibility:
    datasets = sorted(version.datasets.all(), key=lambda d: (d.name, d.version))
    parts = [
        Part(
            "code",
            "code (commit)",
            bool(version.repository_id) and bool(HEX40.match(version.commit_sha or "")),
        ),
        Part("build", "build (id and link)", bool(version.build_id and version.build_url)),
        Part("artifact", "artifact digest", bool(HEX64.match(version.artifact_sha256 or ""))),
        Part("data", "training data", bool(datasets)),
    ]
    parts += [
        Part(
            f"dataset:{dataset.name}@{dataset.version}",
            f"digest of {dataset.name}@{dataset.version}",
            bool(HEX64.match(dataset.sha256 or "")),
        )
        for dataset in datasets
    ]
    parts.append(
        Part("environment_lock", "environment lock", bool(HEX64.match(version.env_lock_sha256)))
    )
    return Reproducibility(tuple(parts))
