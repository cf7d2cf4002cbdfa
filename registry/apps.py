from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        # Model Risk's dashboard: the validations falling due (registry/model_risk.py).
        from portal.dashboard import register_dashboard_panel
        from registry import model_risk

        register_dashboard_panel(
            position=18,
            template="registry/validations_due_panel.html",
            context=model_risk.validations_due_panel,
        )
