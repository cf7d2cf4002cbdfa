from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        # The registry never imports releases; it asks its hook where versions are live.
        from registry import hooks
        from releases.selectors.live import live_environments_of_versions
        from releases.selectors.policy import production_environment_names

        hooks.register_live_environments_provider(live_environments_of_versions)
        hooks.register_production_environments_provider(production_environment_names)

        # Nor does the audit trail: an auditor's "about" text is resolved here.
        from audit import hooks as audit_hooks
        from releases.selectors import audit_subjects

        for resolver in (
            audit_subjects.change_request_about,
            audit_subjects.deployment_about,
            audit_subjects.commit_about,
            audit_subjects.model_about,
        ):
            audit_hooks.register_about_resolver(resolver)
        audit_hooks.register_model_resolver(audit_subjects.model_about)

        # Nor does the organisation: a service account limited to environments names them.
        from organisation.hooks import register_environment_names_provider
        from releases.selectors.policy import environment_names

        register_environment_names_provider(environment_names)

        # Nor does the dashboard: it shows these panels, in this order, before the person's teams.
        from portal.dashboard import register_dashboard_panel
        from releases import dashboard

        register_dashboard_panel(
            position=10, template="releases/attention_panel.html", context=dashboard.needs_attention
        )
        register_dashboard_panel(
            position=15,
            template="releases/reconciliation_panel.html",
            context=dashboard.reconciliation_findings,
        )
        register_dashboard_panel(
            position=20,
            template="releases/change_request_waiting_panel.html",
            context=dashboard.waiting_for_me,
        )
        register_dashboard_panel(
            position=30, template="releases/my_changes_panel.html", context=dashboard.my_changes
        )
