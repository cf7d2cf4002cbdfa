"""Extension points for apps that build on the registry (which never imports them).

Where a version is live belongs to `releases`. The model page asks the providers registered here,
once for the whole page, and shows what they answer; with no provider the column stays empty.

A provider is a callable taking the page's model versions and returning
`{version_id: [environment names]}` in one query. Register it from the other app's
`AppConfig.ready()`::

    from registry import hooks

    class ReleasesConfig(AppConfig):
        def ready(self):
            hooks.register_live_environments_provider(live_environments_of_versions)
"""

from collections.abc import Callable, Sequence

from registry.models import ModelVersion

LiveEnvironmentsProvider = Callable[[Sequence[ModelVersion]], dict[int, list[str]]]

live_environments_providers: list[LiveEnvironmentsProvider] = []


def register_live_environments_provider(provider: LiveEnvironmentsProvider) -> None:
    if provider not in live_environments_providers:
        live_environments_providers.append(provider)


def live_environments(versions: Sequence[ModelVersion]) -> dict[int, list[str]]:
    """`{version_id: [environment names]}` from every provider, merged."""
    merged: dict[int, list[str]] = {}
    if not versions:
        return merged
    for provider in live_environments_providers:
        for version_id, names in provider(versions).items():
            merged.setdefault(version_id, [])
            merged[version_id] += [name for name in names if name not in merged[version_id]]
    return merged


ProductionEnvironmentsProvider = Callable[[], set[str]]
production_environments_providers: list[ProductionEnvironmentsProvider] = []


def register_production_environments_provider(provider: ProductionEnvironmentsProvider) -> None:
    if provider not in production_environments_providers:
        production_environments_providers.append(provider)


def production_environments() -> set[str]:
    """The names of the environments marked as production, from every provider."""
    return set().union(*(provider() for provider in production_environments_providers))
