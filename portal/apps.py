from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Organisation"

    def ready(self):
        from portal import schema  # noqa: F401 - registers the OpenAPI extension
