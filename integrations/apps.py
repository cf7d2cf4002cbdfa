from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Releases never imports integrations; its change request page and API ask this hook
        # where else a change is recorded.
        from integrations.tickets import external_links_of_change_requests
        from releases import hooks

        hooks.register_external_links_provider(external_links_of_change_requests)
