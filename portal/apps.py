from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Organisation"

    def ready(self):
        from portal import schema  # noqa: F401 - registers the OpenAPI extension
        from portal.schedules import install_schedules

        post_migrate.connect(install_schedules, sender=self, dispatch_uid="portal-schedules")
