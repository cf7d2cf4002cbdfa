"""Extension points for apps that build on releases (which never imports them).

A change request may be mirrored elsewhere, in a ticket system for instance. Its page and the
change request API ask the providers registered here for "external links of these change
requests", once for the whole page or list, and show what they answer; with no provider, none.

A provider is a callable taking change requests and returning `{change_request_id: [ExternalLink]}`
in one query. Register it from the other app's `AppConfig.ready()`::

    from releases import hooks

    class IntegrationsConfig(AppConfig):
        def ready(self):
            hooks.register_external_links_provider(external_links_of_change_requests)
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from releases.models import ChangeRequest


@dataclass(frozen=True)
class ExternalLink:
    """Where a change request is also recorded: "ServiceNow", "CHG0030001", its address."""

    system: str
    reference: str
    url: str


ExternalLinksProvider = Callable[[Sequence[ChangeRequest]], dict[int, list[ExternalLink]]]

external_links_providers: list[ExternalLinksProvider] = []


def register_external_links_provider(provider: ExternalLinksProvider) -> None:
    if provider not in external_links_providers:
        external_links_providers.append(provider)


def external_links(change_requests: Sequence[ChangeRequest]) -> dict[int, list[ExternalLink]]:
    """`{change_request_id: [links]}` from every provider, merged."""
    merged: dict[int, list[ExternalLink]] = {}
    if not change_requests:
        return merged
    for provider in external_links_providers:
        for change_request_id, links in provider(change_requests).items():
            merged.setdefault(change_request_id, []).extend(links)
    return merged
