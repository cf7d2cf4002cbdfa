"""Every action the audit trail records, named in one place.

`audit` sits below the apps that write events, so it may know all their names. Values are
`entity.verb` and are stored in hash-chained events: a value never changes once written, or the
filters would stop finding the events that carry it. A new action is a new member.
"""

from django.db import models


class AuditAction(models.TextChoices):
    # The trail itself
    AUDIT_READER_ADDED = "audit.reader_added", "Auditor added"
    AUDIT_SIGNING_KEY_ROTATED = "audit.signing_key_rotated", "Audit signing key rotated"
    RECONCILIATION_FINDING_OPENED = (
        "reconciliation.finding_opened",
        "A row the trail does not explain",
    )
    RECONCILIATION_FINDING_RESOLVED = (
        "reconciliation.finding_resolved",
        "A row the trail explains again",
    )

    # Organisation
    TEAM_CREATED = "team.created", "Team created"
    TEAM_UPDATED = "team.updated", "Team updated"
    MEMBERSHIP_CHANGED = "membership.changed", "Membership changed"
    MEMBERSHIP_REMOVED = "membership.removed", "Membership removed"
    SERVICE_ACCOUNT_CREATED = "service_account.created", "Service account created"
    SERVICE_ACCOUNT_UPDATED = "service_account.updated", "Service account updated"
    SERVICE_ACCOUNT_GRANTS_CHANGED = (
        "service_account.grants_changed",
        "Service account's teams and environments changed",
    )
    ABSENCE_SET = "absence.set", "Absence with a delegate recorded"
    ABSENCE_CANCELLED = "absence.cancelled", "Absence cancelled"
    SERVICE_TOKEN_ISSUED = "service_token.issued", "Service token issued"
    SERVICE_TOKEN_REVOKED = "service_token.revoked", "Service token revoked"
    USER_CREATED = "user.created", "User created"
    USER_UPDATED = "user.updated", "User updated"
    USER_PASSWORD_SET = "user.password_set", "User password set"
    USER_DELETED = "user.deleted", "User deleted"
    USER_LOCKOUT_CLEARED = "user.lockout_cleared", "Sign-in lockout cleared"
    USER_SESSIONS_ENDED = "user.sessions_ended", "Signed out everywhere"
    USER_IDENTITY_LINKED = "user.identity_linked", "User linked to the identity provider"
    GROUP_CREATED = "group.created", "Group created"
    GROUP_UPDATED = "group.updated", "Group updated"
    GROUP_DELETED = "group.deleted", "Group deleted"

    # The site's periodic jobs (django-celery-beat)
    SCHEDULE_CREATED = "schedule.created", "Schedule created"
    SCHEDULE_UPDATED = "schedule.updated", "Schedule updated"
    SCHEDULE_DELETED = "schedule.deleted", "Schedule deleted"

    # Registry
    REPOSITORY_REGISTERED = "repository.registered", "Repository registered"
    REPOSITORY_CONFIGURED = "repository.configured", "Repository configured"
    MODEL_REGISTERED = "model.registered", "Model registered"
    MODEL_INVENTORY_UPDATED = "model.inventory_updated", "Model inventory entry updated"
    MODEL_RETIRED = "model.retired", "Model retired by an approved change"
    VALIDATION_OPENED = "validation.opened", "Model validation opened"
    VALIDATION_CONCLUDED = "validation.concluded", "Model validation concluded"
    VALIDATION_STEP_UP_REFUSED = (
        "validation.step_up_refused",
        "Validation signature at the identity provider refused",
    )
    FINDING_RECORDED = "finding.recorded", "Validation finding recorded"
    FINDING_CLOSED = "finding.closed", "Validation finding closed"
    MODEL_VERSION_REGISTERED = "model_version.registered", "Model version registered"
    MODEL_VERSION_ARTIFACT_CHECKED = (
        "model_version.artifact_checked",
        "Model version artifact checked in its store",
    )
    DATASET_VERSION_REGISTERED = "dataset_version.registered", "Dataset version registered"
    PIPELINE_STATUS_CHANGED = "registry.pipeline_status_changed", "Pipeline status changed"

    # Environments and their policies
    ENVIRONMENT_CREATED = "environment.created", "Environment created"
    ENVIRONMENT_UPDATED = "environment.updated", "Environment updated"
    ENVIRONMENT_POLICY_CHANGED = "environment_policy.changed", "Approval policy changed"
    FREEZE_WINDOW_CREATED = "freeze_window.created", "Freeze window created"
    FREEZE_WINDOW_CANCELLED = "freeze_window.cancelled", "Freeze window cancelled"
    MAINTENANCE_WINDOW_CREATED = "maintenance_window.created", "Maintenance window planned"
    MAINTENANCE_WINDOW_CANCELLED = "maintenance_window.cancelled", "Maintenance window cancelled"
    CALENDAR_FEED_ISSUED = "calendar_feed.issued", "Calendar feed address issued"
    CALENDAR_FEED_REVOKED = "calendar_feed.revoked", "Calendar feed address revoked"

    # Change requests
    CHANGE_REQUEST_CREATED = "change_request.created", "Change request created"
    CHANGE_REQUEST_EDITED = "change_request.edited", "Change request edited"
    CHANGE_REQUEST_SUBMITTED = "change_request.submitted", "Change request submitted"
    CHANGE_REQUEST_SIGNED = "change_request.signed", "Change request signed"
    SIGN_OFF_WITHDRAWN = "sign_off.withdrawn", "Sign-off withdrawn by its signer"
    CHANGE_REQUEST_REAUTH_FAILED = "change_request.reauth_failed", "Signature password refused"
    CHANGE_REQUEST_STEP_UP_REFUSED = (
        "change_request.step_up_refused",
        "Signature at the identity provider refused",
    )
    CHANGE_REQUEST_CANCELLED = "change_request.cancelled", "Change request cancelled"
    CHANGE_REQUEST_EXPIRED = "change_request.expired", "Change request expired"
    CHANGE_REQUEST_DEPLOYED = "change_request.deployed", "Change request deployed"
    CHANGE_REQUEST_ROLLED_BACK = "change_request.rolled_back", "Change request rolled back"
    CHANGE_REQUEST_REOPENED = "change_request.reopened", "Change request reopened by a new policy"
    CHANGE_REQUEST_RETROSPECTIVE_ESCALATED = (
        "change_request.retrospective_escalated",
        "Retrospective review escalated",
    )

    # Standard changes (issue 18)
    STANDARD_TEMPLATE_CREATED = "standard_template.created", "Standard change template filed"
    STANDARD_TEMPLATE_REVOKED = "standard_template.revoked", "Standard change template revoked"
    STANDARD_TEMPLATE_USED = "standard_template.used", "Standard change template used"

    CHANGE_TICKET_LINKED = (
        "change_ticket.linked",
        "Change request mirrored in the ticket system",
    )

    # The gate and deployments
    GATE_CHECKED = "gate.checked", "Gate checked"
    GATE_ADMISSION_REVIEWED = "gate.admission_reviewed", "Cluster admission reviewed"
    DEPLOYMENT_STARTED = "deployment.started", "Deployment started"
    DEPLOYMENT_REFUSED = "deployment.refused", "Deployment refused"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded", "Deployment succeeded"
    DEPLOYMENT_FAILED = "deployment.failed", "Deployment failed"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back", "Deployment rolled back"
    BATCH_RUN_ATTESTED = "batch_run.attested", "Batch run attested its artifact"
    WORKLOAD_OBSERVED = "workload.observed", "Cluster workload first seen serving a digest"
    CLUSTER_UNREACHABLE = "cluster.unreachable", "Cluster namespace could not be read"
    CLUSTER_READABLE_AGAIN = "cluster.readable_again", "Cluster namespace read again"
    RUNTIME_NOT_RUNNING = "runtime.not_running", "Live model served by no workload"
    RUNTIME_RUNNING_AGAIN = "runtime.running_again", "Live model served again"
    DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED = (
        "deployment.unauthorised_change_detected",
        "Unauthorised change detected",
    )
    DEPLOYMENT_UNAUTHORISED_CHANGE_REVIEWED = (
        "deployment.unauthorised_change_reviewed",
        "Unauthorised change reviewed",
    )
    DEPLOYMENT_UNAUTHORISED_CHANGE_ESCALATED = (
        "deployment.unauthorised_change_escalated",
        "Unauthorised change escalated",
    )

    # Chat and webhook subscriptions (integrations)
    WEBHOOK_CREATED = "webhook.created", "Webhook subscription created"
    WEBHOOK_UPDATED = "webhook.updated", "Webhook subscription changed"
    WEBHOOK_DEACTIVATED = "webhook.deactivated", "Webhook subscription deactivated"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", "Webhook signing secret rotated"
    WEBHOOK_TESTED = "webhook.tested", "Webhook test message sent"

    # The MLflow Model Registry as a source (integrations)
    MLFLOW_VERSION_IMPORTED = "mlflow_version.imported", "Model version imported from MLflow"
    MLFLOW_PROMOTION_UNAUTHORISED = (
        "mlflow_promotion.unauthorised",
        "MLflow alias or stage moved outside Gatehouse",
    )
