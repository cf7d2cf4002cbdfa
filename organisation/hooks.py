"""Extension points for apps above the organisation (which never imports them).

A service account may be limited to environments (rule 15), which `releases` owns. The account
keeps their names; to refuse a name that no environment has, the organisation services ask the
provider that `releases` registers from its `AppConfig.ready()`. With no provider, names are
checked for their shape only.
"""

from collections.abc import Callable

EnvironmentNamesProvider = Callable[[], set[str]]

environment_names_providers: list[EnvironmentNamesProvider] = []


def register_environment_names_provider(provider: EnvironmentNamesProvider) -> None:
    if provider not in environment_names_providers:
        environment_names_providers.append(provider)


def known_environment_names() -> set[str] | None:
    """Every environment name the providers know, or None when no app provides them."""
    if not environment_names_providers:
        return None
    return set().union(*(provider() for provider in environment_names_providers))
