from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        # The registry never imports releases; it asks its hook where versions are live.
        from registry import hooks
        from releases.selectors.live import live_environments_of_versions

        hooks.register_live_environments_provider(live_environments_of_versions)
