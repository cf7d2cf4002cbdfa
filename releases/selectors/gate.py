"""The gate's question, resolved to rows once: `(environment, model, version or artifact digest,
change request?)` → the environment and its policy in force, the build, the change it would go
under and every fact the rules read, in one statement whatever the size of the history (two
when deployment start locks the change request first).

The gate API, deployment start, rollback, the change request page and the filing form all ask
here, so they can never resolve the same question differently. The statements are written
out in SQL (portable between PostgreSQL and SQLite) because compiling the equivalent annotated
querysets cost Django about 2 ms each on every call, ten times their execution (measured with
cProfile); the rows they return become ordinary model instances.

Digest → version: a question that names the version takes that version (and the digest, when
also given, must match it); a question with the digest alone takes the version of the model
registered with that digest — one digest is one build, so there is at most one, and should older
data hold several, the newest registration wins.
"""

import json
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.models import Membership, Team
from registry.models import (
    ArtifactOutcome,
    FindingSeverity,
    FindingStatus,
    ModelVersion,
    RegisteredModel,
    Repository,
    ValidationOutcome,
)
from releases.models import (
    ChangeRequest,
    Decision,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentPolicy,
    RiskLevel,
    SignOff,
    SignOffKind,
    StandardChangeTemplate,
)
from releases.states import Kind, State

# The states in which a change request authorises a deployment.
USABLE_STATES = {
    Kind.NORMAL: State.APPROVED,
    Kind.EMERGENCY: State.AUTHORISED,
    Kind.STANDARD: State.APPROVED,
}
USED_STATES = frozenset({State.DEPLOYED, State.ROLLED_BACK, State.RETRO_REVIEW, State.CLOSED})
# States that can never become usable again; the gate looks past them when it picks a change.
DEAD_STATES = frozenset({State.CANCELLED, State.REJECTED, State.EXPIRED})


@dataclass(frozen=True)
class ValidationEvidence:
    outcome: str
    concluded_at: datetime
    valid_until: datetime

    @property
    def rejected(self) -> bool:
        return self.outcome == ValidationOutcome.REJECTED


@dataclass(frozen=True)
class Freeze:
    ends_at: datetime
    reason: str


@dataclass(frozen=True)
class SoakEvidence:
    """Rule 7 for one build: its latest span in the soak source. The span starts when a normal
    deployment of the same artifact digest succeeded there (`started_at`) and ends when another
    digest of the model went live there (`ended_at`, None while it is still live). A rollback
    away from the digest there since the span began (`rolled_back_at`) voids it; failed health
    checks during the span are evidence, and void it where the policy asks for a healthy soak."""

    source: Environment
    days: int
    requires_healthy: bool
    deployment_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    rolled_back_at: datetime | None
    failed_checks: int
    now: datetime

    @property
    def live(self) -> bool:
        return self.started_at is not None and self.ended_at is None

    @property
    def void(self) -> bool:
        unhealthy = self.requires_healthy and self.failed_checks > 0
        return self.rolled_back_at is not None or unhealthy

    @property
    def earliest_allowed_at(self) -> datetime | None:
        """When the rule holds: None while no span can make it hold (never live there, voided,
        or replaced before the days were up: "not while it is not live there")."""
        if self.started_at is None or self.void:
            return None
        earliest = self.started_at + timedelta(days=self.days)
        if self.ended_at is not None and self.ended_at < earliest:
            return None
        return earliest

    @property
    def holds(self) -> bool:
        earliest = self.earliest_allowed_at
        return earliest is not None and earliest <= self.now


@dataclass(frozen=True)
class OverdueRetrospective:
    number: str
    due_at: datetime


@dataclass(frozen=True)
class DependencyConflict:
    number: str
    model: str
    # True when this change's model depends on `model`; False when `model` depends on it.
    upstream: bool


@dataclass(frozen=True)
class OverloadedSigner:
    username: str
    team: str
    changes: int
    day: date


@dataclass(frozen=True)
class TemplateFacts:
    """Issue 18: the standard change template a standard change is made under, as it stands:
    what the change must match, whether the template may still serve, and how often it has."""

    number: str
    model_id: int
    repository_id: int
    pipeline: str
    valid_until: datetime
    max_uses: int
    revoked_at: datetime | None
    approved: bool
    serves_environment: bool
    uses: int


@dataclass(frozen=True)
class GateQuestion:
    """What the gate was asked, as asked (`asked`), and the rows and facts it resolved to. A
    missing row is None; the rules say which absence is a refusal."""

    asked: dict[str, str]
    now: datetime
    environment: Environment | None
    policy: EnvironmentPolicy | None
    freeze: Freeze | None
    model: RegisteredModel | None
    model_version: ModelVersion | None
    pipeline_status: str | None
    soak: SoakEvidence | None
    change_request: ChangeRequest | None
    change_request_named: bool
    attempt_in_progress: bool
    attempt_succeeded: bool
    authorised_at: datetime | None
    overdue_retrospective: OverdueRetrospective | None
    # Rule 13: the approval teams of the policy in force without a valid sign-off on the change,
    # and whether its peer review stands.
    unsigned_teams: list[str]
    peer_reviewed: bool
    # Rule 17: reconciliation found the change, one of its sign-offs or deployments, or the
    # policy in force, not explained by the audit trail.
    record_inconsistent: bool
    # Issue 18, conflicts: another live change to the model and environment whose window
    # overlaps this change's, and a freeze planned to begin inside its window.
    conflicting_change: str | None = None
    window_freeze_reason: str | None = None
    # A live change to a model this one depends on, or that depends on it, in the same
    # environment and an overlapping window; and the sole approver of a team this change still
    # needs who is needed on more changes that day than `GATEHOUSE_SIGNER_CHANGES_PER_DAY`.
    dependency_conflict: "DependencyConflict | None" = None
    signer_overloaded: "OverloadedSigner | None" = None
    # Model risk (issue 16): the newest validation covering the build, and how many high
    # findings of the model are open past their remediation date.
    validation: "ValidationEvidence | None" = None
    findings_overdue: int = 0
    # Issue 20: what the newest look at the build's artifact that reached its store found
    # (verified or mismatch; None when no store has ever answered).
    artifact_outcome: str | None = None
    # Issue 18: the template of a standard change.
    template: TemplateFacts | None = None

    @property
    def change_kind(self) -> str:
        return self.change_request.kind if self.change_request else Kind.NORMAL


def _moment(value: Any) -> datetime | None:
    """A timestamp column as an aware datetime: SQLite hands back naive UTC (as a datetime or
    as text), PostgreSQL an aware datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


def _matchable(name: str) -> str:
    """A name as a query parameter: a NUL byte (which PostgreSQL refuses in text) becomes a
    character no name may hold, so the name matches nothing, as it should."""
    return name.replace("\x00", "\ufffd")


def _param(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


@cache
def _reading(model: type[Model], prefix: str, fields: tuple[str, ...]) -> tuple:
    """Each field's key in the row and its type, looked up once: per call, the lookups cost
    more than building the instances."""
    return tuple(
        (f"{prefix}{name}", model._meta.get_field(name).get_internal_type()) for name in fields
    )


def _instance(model: type[Model], row: dict[str, Any], prefix: str, fields: tuple[str, ...]):
    """A model instance from the `prefix`-named columns of a row (None when its id is NULL);
    fields left out are loaded on first access, as with `only()`. `fields` are listed in the
    model's order, as `Model.from_db` takes them."""
    if row[f"{prefix}id"] is None:
        return None
    values = []
    for key, kind in _reading(model, prefix, fields):
        value = row[key]
        if kind == "DateTimeField":
            value = _moment(value)
        elif kind == "BooleanField" and value is not None:
            value = bool(value)
        elif kind == "JSONField" and isinstance(value, str):
            value = json.loads(value)
        values.append(value)
    return model.from_db(connection.alias, fields, values)


def _columns(table: str, prefix: str, fields: tuple[str, ...], model: type[Model]) -> str:
    return ", ".join(
        f'{table}."{model._meta.get_field(name).column}" AS "{prefix}{name}"' for name in fields
    )


ENVIRONMENT_FIELDS = ("id", "name", "rank")
POLICY_FIELDS = (
    "id",
    "environment_id",
    "version",
    "needs_change_request",
    "needs_peer_review",
    "soak_source_id",
    "soak_days",
    "soak_requires_healthy",
    "emergency_allowed",
    "requires_validation",
    "requires_verified_artifact",
    "exclude_commit_authors",
    "retrospective_hours",
    "conflicts_block",
    "high_risk_team_id",
    "created_at",
)
MODEL_FIELDS = ("id", "name", "owner_team_id", "risk_tier", "lifecycle_status")
VERSION_FIELDS = (
    "id",
    "model_id",
    "version",
    "repository_id",
    "commit_sha",
    "ref",
    "build_id",
    "build_url",
    "artifact_uri",
    "artifact_sha256",
    "created_at",
)
REPOSITORY_FIELDS = ("id", "url", "gitlab_url", "gitlab_project_id")
CHANGE_FIELDS = (
    "id",
    "kind",
    "state",
    "model_version_id",
    "environment_id",
    "requester_id",
    "team_id",
    "title",
    "window_start",
    "window_end",
    "incident_ref",
    "content_digest",
    "policy_id",
    "standard_template_id",
    "template_diff",
    "risk_level",
    "retrospective_due_at",
)


def _in(values) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


# Two statements, put together once from the column names and the state lists of this code
# base; every value from a request goes in as a query parameter.
#
# The build and its surroundings. `asked` is a one-row table so that every name that matches
# nothing still yields a row with NULLs, and the rules can say which one was unknown.
BUILD_SQL = """
SELECT {asked_columns}{environment_e},
       {policy_p},
       soak_env.name AS soak_source_name,
       {model_m},
       {version_v},
       {repository_r},
       f.ends_at AS freeze_ends_at, f.reason AS freeze_reason,
       soak.id AS soak_id, soak.succeeded_at AS soak_started_at,
       (SELECT MIN(n.succeeded_at) FROM releases_deployment n
         JOIN registry_modelversion nv ON nv.id = n.model_version_id
         WHERE n.environment_id = soak.environment_id AND n.model_id = soak.model_id
           AND n.succeeded_at > soak.succeeded_at
           AND nv.artifact_sha256 <> v.artifact_sha256) AS soak_ended_at,
       COALESCE(
         (SELECT MIN(rb.succeeded_at) FROM releases_deployment rb
           JOIN releases_deployment away ON away.id = rb.rollback_of_id
           JOIN registry_modelversion av ON av.id = away.model_version_id
           WHERE rb.environment_id = soak.environment_id AND rb.model_id = soak.model_id
             AND rb.kind = '{rollback}' AND rb.succeeded_at >= soak.succeeded_at
             AND av.artifact_sha256 = v.artifact_sha256),
         (SELECT MIN(rb.succeeded_at) FROM releases_deployment rb
           WHERE rb.rollback_of_id = soak.id))
         AS soak_rolled_back_at,
       (SELECT COUNT(*) FROM releases_healthcheck h
         JOIN releases_deployment hd ON hd.id = h.deployment_id
         JOIN registry_modelversion hv ON hv.id = hd.model_version_id
         WHERE hd.environment_id = soak.environment_id AND hd.model_id = soak.model_id
           AND hv.artifact_sha256 = v.artifact_sha256 AND h.ok = %(false)s
           AND h.checked_at >= soak.succeeded_at) AS soak_failed_checks,
       val.id AS validation_id, val.outcome AS validation_outcome,
       val.concluded_at AS validation_concluded_at, val.valid_until AS validation_valid_until,
       (SELECT COUNT(*) FROM registry_finding fi
         JOIN registry_validation fv ON fv.id = fi.validation_id
         WHERE fv.model_id = m.id AND fi.status = '{finding_open}'
           AND fi.severity = '{finding_high}' AND fi.remediation_due < %(today)s)
         AS findings_overdue,
       (SELECT ac.outcome FROM registry_artifactcheck ac
         WHERE ac.model_version_id = v.id AND ac.outcome <> '{artifact_unverified}'
         ORDER BY ac.checked_at DESC, ac.id DESC LIMIT 1) AS artifact_outcome,
       (SELECT ps.status FROM registry_pipelinestatus ps
         WHERE ps.repository_id = v.repository_id AND ps.commit_sha = v.commit_sha)
         AS pipeline_status,
       (SELECT c.id FROM releases_changerequest c
         WHERE c.environment_id = e.id AND c.model_version_id = v.id
           AND c.state NOT IN ({dead_or_draft}) AND c.kind <> '{standard_template}'
         ORDER BY CASE WHEN c.state IN ({usable}) THEN 0 ELSE 1 END,
                  c.id DESC
         LIMIT 1) AS found_change_id
FROM {asked} asked
LEFT JOIN releases_environment e ON e.name = {ask_environment}
LEFT JOIN releases_environmentpolicy p ON p.id = (
    SELECT p2.id FROM releases_environmentpolicy p2 WHERE p2.environment_id = e.id
    ORDER BY p2.version DESC LIMIT 1)
LEFT JOIN releases_environment soak_env ON soak_env.id = p.soak_source_id
LEFT JOIN releases_freezewindow f ON f.id = (
    SELECT f2.id FROM releases_freezewindow f2
    WHERE f2.environment_id = e.id AND f2.cancelled_at IS NULL
      AND f2.starts_at <= {ask_now} AND f2.ends_at > {ask_now}
    ORDER BY f2.ends_at LIMIT 1)
LEFT JOIN registry_registeredmodel m ON m.name = {ask_model}
LEFT JOIN registry_modelversion v ON v.id = (
    SELECT v2.id FROM registry_modelversion v2
    WHERE v2.model_id = m.id
      AND (({ask_version} <> '' AND v2.version = {ask_version})
        OR ({ask_version} = '' AND v2.artifact_sha256 = {ask_artifact_sha256}))
    ORDER BY v2.created_at DESC, v2.id DESC LIMIT 1)
LEFT JOIN registry_repository r ON r.id = v.repository_id
LEFT JOIN registry_validation val ON val.id = (
    SELECT vc.validation_id FROM registry_validation_covers vc
    JOIN registry_validation v3 ON v3.id = vc.validation_id
    WHERE vc.modelversion_id = v.id AND v3.concluded_at IS NOT NULL
    ORDER BY v3.concluded_at DESC, v3.id DESC LIMIT 1)
LEFT JOIN releases_deployment soak ON soak.id = (
    SELECT d.id FROM releases_deployment d
    JOIN registry_modelversion dv ON dv.id = d.model_version_id
    WHERE d.environment_id = p.soak_source_id AND d.model_id = v.model_id
      AND dv.artifact_sha256 = v.artifact_sha256 AND d.kind = '{deploy}'
      AND d.succeeded_at IS NOT NULL
    ORDER BY d.succeeded_at DESC, d.id DESC LIMIT 1)
"""

# The change it would go under, what became of its attempts (rule 9), when an emergency was
# authorised (rule 11), and the model's first overdue emergency retrospective: on its own after
# the change request row is locked (deployment start), else read with the build in one statement.
CHANGE_SQL = """
SELECT {build_columns}{change_c},
       {version_cv},
       {model_cm},
       {environment_ce},
       EXISTS (SELECT 1 FROM releases_deployment a WHERE a.change_request_id = c.id
               AND a.kind = '{deploy}'
               AND a.status = '{started}') AS attempt_in_progress,
       EXISTS (SELECT 1 FROM releases_deployment a WHERE a.change_request_id = c.id
               AND a.kind = '{deploy}'
               AND a.succeeded_at IS NOT NULL) AS attempt_succeeded,
       (SELECT s.signed_at FROM releases_signoff s WHERE s.change_request_id = c.id
         AND s.kind = '{emergency_authorisation}'
         AND s.decision = '{approve}' AND s.voided_at IS NULL
         ORDER BY s.signed_at DESC LIMIT 1) AS authorised_at,
       (SELECT COUNT(*) FROM {teams} rt
         WHERE {team_needed}
           AND NOT EXISTS (SELECT 1 FROM releases_signoff sa
                           WHERE sa.change_request_id = c.id AND sa.team_id = rt.id
                             AND sa.kind = '{approval}' AND sa.decision = '{approve}'
                             AND sa.voided_at IS NULL)) AS missing_approval_teams,
       EXISTS (SELECT 1 FROM releases_signoff sp WHERE sp.change_request_id = c.id
               AND sp.kind = '{peer_review}' AND sp.decision = '{approve}'
               AND sp.voided_at IS NULL) AS peer_reviewed,
       (EXISTS (SELECT 1 FROM releases_reconciliationfinding rc
                WHERE rc.change_request_id = c.id AND rc.resolved_at IS NULL)
        OR EXISTS (SELECT 1 FROM releases_reconciliationfinding rp
                   WHERE rp.policy_id = {policy_id} AND rp.resolved_at IS NULL))
         AS record_inconsistent,
       o.id AS overdue_id, o.retrospective_due_at AS overdue_due_at,
       (SELECT x.id FROM releases_changerequest x
         JOIN registry_modelversion xv ON xv.id = x.model_version_id
         WHERE x.id <> c.id AND x.environment_id = c.environment_id
           AND xv.model_id = cv.model_id AND x.state NOT IN ({dead_draft_or_used})
           AND x.window_start < c.window_end AND x.window_end > c.window_start
         ORDER BY x.window_start, x.id LIMIT 1) AS conflicting_id,
       (SELECT fw.reason FROM releases_freezewindow fw
         WHERE fw.environment_id = c.environment_id AND fw.cancelled_at IS NULL
           AND fw.starts_at < c.window_end AND fw.ends_at > c.window_start
           AND fw.starts_at > {ask_now}
         ORDER BY fw.starts_at LIMIT 1) AS window_freeze_reason,
       dx.id AS dependency_id, dxm.name AS dependency_model,
       EXISTS (SELECT 1 FROM {dependencies} du WHERE du.from_registeredmodel_id = cv.model_id
               AND du.to_registeredmodel_id = dxm.id) AS dependency_upstream,
       su.username AS overloaded_username, st.name AS overloaded_team,
       {overloaded_needed} AS overloaded_elsewhere,
       t.id AS t_id, t.model_id AS t_model_id, tv.repository_id AS t_repository_id,
       t.pipeline AS t_pipeline, t.valid_until AS t_valid_until, t.max_uses AS t_max_uses,
       t.revoked_at AS t_revoked_at,
       EXISTS (SELECT 1 FROM releases_changerequest ta WHERE ta.standard_template_id = t.id
               AND ta.kind = '{standard_template}' AND ta.state = '{approved}') AS t_approved,
       EXISTS (SELECT 1 FROM {template_environments} te
               WHERE te.standardchangetemplate_id = t.id
                 AND te.environment_id = c.environment_id) AS t_serves_environment,
       (SELECT COUNT(*) FROM releases_changerequest tu WHERE tu.standard_template_id = t.id
         AND tu.kind = '{standard}' AND tu.id <> c.id AND tu.state IN ({used})) AS t_uses
FROM {source} asked
LEFT JOIN releases_changerequest c ON c.id = {change_id}
LEFT JOIN registry_modelversion cv ON cv.id = c.model_version_id
LEFT JOIN registry_registeredmodel cm ON cm.id = cv.model_id
LEFT JOIN releases_environment ce ON ce.id = c.environment_id
LEFT JOIN releases_changerequest o ON o.id = (
    SELECT o2.id FROM releases_changerequest o2
    JOIN registry_modelversion ov ON ov.id = o2.model_version_id
    WHERE o2.kind = '{emergency}' AND ov.model_id = {model_id}
      AND o2.state IN ({retrospective_pending})
      AND o2.retrospective_due_at < {ask_now} AND o2.id <> COALESCE(c.id, 0)
    ORDER BY o2.retrospective_due_at LIMIT 1)
LEFT JOIN releases_changerequest dx ON dx.id = (
    SELECT x.id FROM releases_changerequest x
    JOIN registry_modelversion xv ON xv.id = x.model_version_id
    JOIN {dependencies} dep
      ON (dep.from_registeredmodel_id = cv.model_id AND dep.to_registeredmodel_id = xv.model_id)
      OR (dep.to_registeredmodel_id = cv.model_id AND dep.from_registeredmodel_id = xv.model_id)
    WHERE x.id <> c.id AND x.environment_id = c.environment_id AND x.state IN ({live})
      AND x.window_start < c.window_end AND x.window_end > c.window_start
    ORDER BY x.window_start, x.id LIMIT 1)
LEFT JOIN registry_modelversion dxv ON dxv.id = dx.model_version_id
LEFT JOIN registry_registeredmodel dxm ON dxm.id = dxv.model_id
LEFT JOIN portal_membership so ON so.id = (
    SELECT sm.id FROM portal_membership sm
    WHERE sm.is_approver = %(true)s AND c.window_start IS NOT NULL AND {sole_team_needed}
      AND NOT EXISTS (SELECT 1 FROM portal_membership sx WHERE sx.team_id = sm.team_id
                      AND sx.is_approver = %(true)s AND sx.user_id <> sm.user_id)
      AND NOT EXISTS (SELECT 1 FROM releases_signoff ss WHERE ss.change_request_id = c.id
                      AND ss.team_id = sm.team_id AND ss.kind = '{approval}'
                      AND ss.decision = '{approve}' AND ss.voided_at IS NULL)
      AND {sole_needed} >= %(signer_limit)s
    ORDER BY sm.user_id, sm.team_id LIMIT 1)
LEFT JOIN {users} su ON su.id = so.user_id
LEFT JOIN portal_team st ON st.id = so.team_id
LEFT JOIN releases_standardchangetemplate t
  ON t.id = c.standard_template_id AND c.kind = '{standard}'
LEFT JOIN registry_modelversion tv ON tv.id = t.base_version_id
"""

# Whether team `{team}` must approve change `{change}` under policy `{policy}`: the policy's
# approval teams, only its low-risk teams for a low-risk normal change where it names some, its
# high-risk team besides for a high-risk change, none for a standard change; with no change at
# all, every approval team. The SQL twin of `EnvironmentPolicy.teams_for`.
TEAM_NEEDED_SQL = """(COALESCE({change}.kind, '') <> '{standard}' AND (
  ({team} IN (SELECT pat.team_id FROM releases_environmentpolicy_approval_teams pat
              WHERE pat.environmentpolicy_id = {policy})
   AND NOT ({change}.kind = '{normal}' AND {change}.risk_level = '{risk_low}'
            AND EXISTS (SELECT 1 FROM {low_risk_teams} lr0
                        WHERE lr0.environmentpolicy_id = {policy})
            AND {team} NOT IN (SELECT lr.team_id FROM {low_risk_teams} lr
                               WHERE lr.environmentpolicy_id = {policy})))
  OR ({change}.risk_level = '{risk_high}' AND {team} = (
      SELECT hp.high_risk_team_id FROM releases_environmentpolicy hp WHERE hp.id = {policy}))))"""

# How many other live changes whose window starts on the same day (in the portal's time zone)
# as change `c` need `{person}` to sign: as the only approver of a team that the policy in force
# there needs on that change and that has not signed yet (issue 18, `signer_overloaded`).
SIGNER_NEEDED_SQL = """(SELECT COUNT(*) FROM releases_changerequest n
  JOIN releases_environmentpolicy np ON np.environment_id = n.environment_id
    AND np.version = (SELECT MAX(nv.version) FROM releases_environmentpolicy nv
                      WHERE nv.environment_id = n.environment_id)
  WHERE n.id <> c.id AND n.state IN ({live}) AND n.window_start IS NOT NULL
    AND {n_day} = {c_day}
    AND EXISTS (
      SELECT 1 FROM portal_membership nm
      WHERE nm.user_id = {person} AND nm.is_approver = %(true)s AND {team_needed}
        AND NOT EXISTS (SELECT 1 FROM portal_membership nx WHERE nx.team_id = nm.team_id
                        AND nx.is_approver = %(true)s AND nx.user_id <> {person})
        AND NOT EXISTS (SELECT 1 FROM releases_signoff ns WHERE ns.change_request_id = n.id
                        AND ns.team_id = nm.team_id AND ns.kind = '{approval}'
                        AND ns.decision = '{approve}' AND ns.voided_at IS NULL)))"""


def _local_date(column: str) -> str:
    """The calendar day of a moment in the portal's time zone (`%(time_zone)s`), on either
    database (Django registers `django_datetime_cast_date` on its SQLite connections)."""
    if connection.vendor == "postgresql":
        return f"CAST(({column}) AT TIME ZONE %(time_zone)s AS DATE)"
    return f"django_datetime_cast_date({column}, %(time_zone)s, 'UTC')"


# What the build statement is asked about: one question's parameters by default; the batch of
# change requests (`gate_questions_for_changes`) puts a column of its rows in their place.
ASKED_BY_PARAMETERS = {
    "asked": "(SELECT 1 AS one)",
    "asked_columns": "",
    "ask_environment": "%(environment)s",
    "ask_model": "%(model)s",
    "ask_version": "%(version)s",
    "ask_artifact_sha256": "%(artifact_sha256)s",
    "ask_now": "%(now)s",
}
LIVE_STATES = frozenset(State) - DEAD_STATES - USED_STATES - {State.DRAFT}


def _team_needed(*, team: str, change: str, policy: str) -> str:
    return TEAM_NEEDED_SQL.format(
        team=team,
        change=change,
        policy=policy,
        standard=Kind.STANDARD,
        normal=Kind.NORMAL,
        risk_low=RiskLevel.LOW,
        risk_high=RiskLevel.HIGH,
        low_risk_teams=EnvironmentPolicy.low_risk_approval_teams.through._meta.db_table,
    )


def _signer_needed(person: str) -> str:
    return SIGNER_NEEDED_SQL.format(
        person=person,
        live=_in(LIVE_STATES),
        n_day=_local_date("n.window_start"),
        c_day=_local_date("c.window_start"),
        approval=SignOffKind.APPROVAL,
        approve=Decision.APPROVE,
        team_needed=_team_needed(team="nm.team_id", change="n", policy="np.id"),
    )


def _statement(template: str, **parts: str) -> str:
    policy = parts.get("policy_id", "")
    return template.format(
        **{**ASKED_BY_PARAMETERS, **parts},
        team_needed=_team_needed(team="rt.id", change="c", policy=policy),
        sole_team_needed=_team_needed(team="sm.team_id", change="c", policy=policy),
        dependencies=RegisteredModel.upstream_models.through._meta.db_table,
        users=Membership._meta.get_field("user").related_model._meta.db_table,
        live=_in(LIVE_STATES),
        sole_needed=_signer_needed("sm.user_id"),
        overloaded_needed=_signer_needed("so.user_id"),
        environment_e=_columns("e", "e_", ENVIRONMENT_FIELDS, Environment),
        environment_ce=_columns("ce", "ce_", ENVIRONMENT_FIELDS, Environment),
        policy_p=_columns("p", "p_", POLICY_FIELDS, EnvironmentPolicy),
        model_m=_columns("m", "m_", MODEL_FIELDS, RegisteredModel),
        model_cm=_columns("cm", "cm_", MODEL_FIELDS, RegisteredModel),
        version_v=_columns("v", "v_", VERSION_FIELDS, ModelVersion),
        version_cv=_columns("cv", "cv_", VERSION_FIELDS, ModelVersion),
        repository_r=_columns("r", "r_", REPOSITORY_FIELDS, Repository),
        change_c=_columns("c", "c_", CHANGE_FIELDS, ChangeRequest),
        dead_or_draft=_in(DEAD_STATES | {State.DRAFT}),
        dead_draft_or_used=_in(DEAD_STATES | USED_STATES | {State.DRAFT}),
        used=_in(USED_STATES),
        approved=State.APPROVED,
        standard=Kind.STANDARD,
        standard_template=Kind.STANDARD_TEMPLATE,
        teams=Team._meta.db_table,
        template_environments=StandardChangeTemplate.environments.through._meta.db_table,
        usable=_in(USABLE_STATES.values()),
        retrospective_pending=_in({State.DEPLOYED, State.RETRO_REVIEW}),
        rollback=DeploymentKind.ROLLBACK,
        deploy=DeploymentKind.DEPLOY,
        started=DeploymentStatus.STARTED,
        emergency_authorisation=SignOffKind.EMERGENCY_AUTHORISATION,
        approval=SignOffKind.APPROVAL,
        peer_review=SignOffKind.PEER_REVIEW,
        approve=Decision.APPROVE,
        emergency=Kind.EMERGENCY,
        finding_open=FindingStatus.OPEN,
        finding_high=FindingSeverity.HIGH,
        artifact_unverified=ArtifactOutcome.UNVERIFIED,
    )


# The SQL type of every parameter, for PostgreSQL's PREPARE.
PARAMETER_TYPES = {
    "environment": "text",
    "model": "text",
    "version": "text",
    "artifact_sha256": "text",
    "now": "timestamptz",
    "today": "date",
    "false": "boolean",
    "named": "boolean",
    "change_request": "bigint",
    "model_id": "bigint",
    "policy_id": "bigint",
    "true": "boolean",
    "signer_limit": "integer",
    "time_zone": "text",
}
# PostgreSQL connection → the names of the statements prepared on it.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Statement:
    """One of the gate's statements. On PostgreSQL it runs as a prepared statement, planned once
    per connection: planning the question took 2.0 ms of its 2.5 (EXPLAIN ANALYZE), and
    production keeps connections open (`DATABASE_CONN_MAX_AGE`). Behind a pooler in transaction
    mode, `GATEHOUSE_PREPARED_STATEMENTS=0` sends the plain statement instead."""

    def __init__(self, name: str, sql: str) -> None:
        self.name, self.sql = name, sql
        self.parameters = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
        positional = sql
        for number, parameter in enumerate(self.parameters, start=1):
            positional = positional.replace(f"%({parameter})s", f"${number}")
        types = ", ".join(PARAMETER_TYPES[parameter] for parameter in self.parameters)
        self.prepare = f"PREPARE {name} ({types}) AS {positional}"
        self.execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.parameters))})"

    def fetch_row(self, params: dict[str, Any]) -> dict[str, Any]:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and settings.GATEHOUSE_PREPARED_STATEMENTS:
                prepared = _prepared.setdefault(connection.connection, set())
                if self.name not in prepared:
                    cursor.execute(self.prepare)
                    prepared.add(self.name)
                cursor.execute(self.execute, [params[name] for name in self.parameters])
            else:
                cursor.execute(self.sql, params)
            names = [column[0] for column in cursor.description]
            return dict(zip(names, cursor.fetchone(), strict=True))


BUILD_STATEMENT = _statement(BUILD_SQL)
QUESTION = Statement(
    "gatehouse_gate_question",
    _statement(
        CHANGE_SQL,
        build_columns="asked.*, ",
        source=f"({BUILD_STATEMENT})",
        change_id="CASE WHEN %(named)s THEN %(change_request)s ELSE asked.found_change_id END",
        model_id="asked.m_id",
        policy_id="asked.p_id",
    ),
)
BUILD = Statement("gatehouse_gate_build", BUILD_STATEMENT)
CHANGE = Statement(
    "gatehouse_gate_change",
    _statement(
        CHANGE_SQL,
        build_columns="",
        source="(SELECT 1 AS one)",
        change_id="%(change_request)s",
        model_id="%(model_id)s",
        policy_id="%(policy_id)s",
    ),
)


def _unsigned_teams(policy: EnvironmentPolicy, change: ChangeRequest) -> list[str]:
    """The names the statement counted, read only when some team is missing (a refusal)."""
    if change is None:
        return sorted(team.name for team in policy.approval_teams.all())
    signed = set(
        SignOff.objects.filter(
            change_request=change,
            kind=SignOffKind.APPROVAL,
            decision=Decision.APPROVE,
            voided_at__isnull=True,
        ).values_list("team_id", flat=True)
    )
    return sorted(team.name for team in policy.teams_for(change) if team.pk not in signed)


def change_request_pk(value: ChangeRequest | str | int) -> int | None:
    """The id a change request number (`CR-42`, `cr-42`, `42`) names, or None if it names none."""
    if isinstance(value, ChangeRequest):
        return value.pk
    text = str(value).strip().upper().removeprefix("CR-")
    # isdigit() alone admits digits like "³" that int() refuses; 18 digits fit a bigint.
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    return int(text)


def _lock(change_request_id: int) -> None:
    """Lock the change request in a statement of its own; it serialises every start under one
    change. A statement that waits for a lock still reads other tables as they were when it
    began, so the attempts under the change are read by the next statement, once the lock is
    held and the winner's deployment is visible (rule 9 under a race)."""
    list(ChangeRequest.objects.select_for_update().filter(pk=change_request_id).values_list("pk"))


def _parameters(now: datetime) -> dict[str, Any]:
    """The parameters every statement takes besides the names asked."""
    return {
        "now": _param(now),
        "today": timezone.localdate(now),
        "false": False,
        "true": True,
        "signer_limit": settings.GATEHOUSE_SIGNER_CHANGES_PER_DAY,
        "time_zone": timezone.get_current_timezone_name(),
    }


def gate_question_resolve(
    *,
    environment: Environment | str,
    model: RegisteredModel | str,
    version: str = "",
    artifact_sha256: str = "",
    change_request: ChangeRequest | str | int | None = None,
    now: datetime | None = None,
    lock: bool = False,
) -> GateQuestion:
    """Resolve the question in one statement. With `lock` (deployment start, inside the
    caller's transaction) the change request row is locked before its attempts are read, by a
    second statement."""
    now = now or timezone.now()
    asked: dict[str, str] = {
        "environment": getattr(environment, "name", environment),
        "model": getattr(model, "name", model),
        "version": version,
        "artifact_sha256": artifact_sha256,
        "change_request": getattr(change_request, "number", change_request) or "",
    }
    named = change_request not in (None, "")
    params = {
        **_parameters(now),
        "environment": _matchable(asked["environment"]),
        "model": _matchable(asked["model"]),
        "version": _matchable(version),
        "artifact_sha256": _matchable(artifact_sha256),
        "named": named,
        "change_request": change_request_pk(change_request) if named else None,
    }
    build = (BUILD if lock else QUESTION).fetch_row(params)
    change = build
    if lock:
        change_id = params["change_request"] if named else build["found_change_id"]
        if change_id is not None:
            _lock(change_id)
        change = CHANGE.fetch_row(
            {
                **params,
                "change_request": change_id,
                "model_id": build["m_id"],
                "policy_id": build["p_id"],
            }
        )
    return _question(asked=asked, now=now, named=named, build=build, change=change)


def _question(
    *,
    asked: dict[str, str],
    now: datetime,
    named: bool,
    build: dict[str, Any],
    change: dict[str, Any],
    unsigned_teams: Callable[[EnvironmentPolicy, ChangeRequest], list[str]] | None = None,
) -> GateQuestion:
    """The question from the rows its statements returned (the build's and the change's, one
    and the same row unless deployment start locked the change in between)."""
    found_environment = _instance(Environment, build, "e_", ENVIRONMENT_FIELDS)
    policy = _instance(EnvironmentPolicy, build, "p_", POLICY_FIELDS)
    found_model = _instance(RegisteredModel, build, "m_", MODEL_FIELDS)
    model_version = _instance(ModelVersion, build, "v_", VERSION_FIELDS)
    soak = None
    if policy is not None:
        policy.environment = found_environment
        if policy.soak_source_id is not None:
            policy.soak_source = Environment.from_db(
                connection.alias, ["id", "name"], [policy.soak_source_id, build["soak_source_name"]]
            )
        if policy.soak_source_id is not None and policy.soak_days and model_version is not None:
            soak = SoakEvidence(
                source=policy.soak_source,
                days=policy.soak_days,
                requires_healthy=policy.soak_requires_healthy,
                deployment_id=build["soak_id"],
                started_at=_moment(build["soak_started_at"]),
                ended_at=_moment(build["soak_ended_at"]),
                rolled_back_at=_moment(build["soak_rolled_back_at"]),
                failed_checks=build["soak_failed_checks"] or 0,
                now=now,
            )
    if model_version is not None:
        model_version.model = found_model
        model_version.repository = _instance(Repository, build, "r_", REPOSITORY_FIELDS)

    found_change = _instance(ChangeRequest, change, "c_", CHANGE_FIELDS)
    if found_change is not None:
        found_change.model_version = _instance(ModelVersion, change, "cv_", VERSION_FIELDS)
        found_change.model_version.model = _instance(RegisteredModel, change, "cm_", MODEL_FIELDS)
        found_change.environment = _instance(Environment, change, "ce_", ENVIRONMENT_FIELDS)
    overdue = None
    if change["overdue_id"] is not None:
        overdue = OverdueRetrospective(
            number=ChangeRequest(pk=change["overdue_id"]).number,
            due_at=_moment(change["overdue_due_at"]),
        )
    return GateQuestion(
        asked=asked,
        now=now,
        environment=found_environment,
        policy=policy,
        freeze=(
            Freeze(ends_at=_moment(build["freeze_ends_at"]), reason=build["freeze_reason"])
            if build["freeze_ends_at"] is not None
            else None
        ),
        model=found_model,
        model_version=model_version,
        pipeline_status=build["pipeline_status"],
        soak=soak,
        change_request=found_change,
        change_request_named=named,
        attempt_in_progress=bool(change["attempt_in_progress"]),
        attempt_succeeded=bool(change["attempt_succeeded"]),
        authorised_at=_moment(change["authorised_at"]),
        unsigned_teams=(
            (unsigned_teams or _unsigned_teams)(policy, found_change)
            # With no change, every team counts as missing and no rule asks which.
            if found_change is not None and change["missing_approval_teams"]
            else []
        ),
        peer_reviewed=bool(change["peer_reviewed"]),
        record_inconsistent=bool(change["record_inconsistent"]),
        overdue_retrospective=overdue,
        conflicting_change=(
            ChangeRequest(pk=change["conflicting_id"]).number
            if change["conflicting_id"] is not None
            else None
        ),
        window_freeze_reason=change["window_freeze_reason"],
        dependency_conflict=(
            DependencyConflict(
                number=ChangeRequest(pk=change["dependency_id"]).number,
                model=change["dependency_model"],
                upstream=bool(change["dependency_upstream"]),
            )
            if change["dependency_id"] is not None
            else None
        ),
        signer_overloaded=(
            OverloadedSigner(
                username=change["overloaded_username"],
                team=change["overloaded_team"],
                changes=change["overloaded_elsewhere"] + 1,
                day=timezone.localtime(found_change.window_start).date(),
            )
            if change["overloaded_username"] is not None
            else None
        ),
        validation=(
            ValidationEvidence(
                outcome=build["validation_outcome"],
                concluded_at=_moment(build["validation_concluded_at"]),
                valid_until=_moment(build["validation_valid_until"]),
            )
            if build["validation_id"] is not None
            else None
        ),
        findings_overdue=build["findings_overdue"] or 0,
        artifact_outcome=build["artifact_outcome"],
        template=(
            TemplateFacts(
                number=f"ST-{change['t_id']}",
                model_id=change["t_model_id"],
                repository_id=change["t_repository_id"],
                pipeline=change["t_pipeline"],
                valid_until=_moment(change["t_valid_until"]),
                max_uses=change["t_max_uses"],
                revoked_at=_moment(change["t_revoked_at"]),
                approved=bool(change["t_approved"]),
                serves_environment=bool(change["t_serves_environment"]),
                uses=change["t_uses"],
            )
            if change["t_id"] is not None
            else None
        ),
    )


# The batch: the question of each change request in a set, asked as at the start of its window
# (as at `now` once the window has begun, or for a change that has none yet), in one statement
# whatever their number.
CHANGES_ASKED = """(SELECT qc.id AS q_change_id, qe.name AS q_environment, qm.name AS q_model,
        qv.version AS q_version,
        CASE WHEN qc.window_start > %(now)s THEN qc.window_start ELSE %(now)s END AS q_now
   FROM releases_changerequest qc
   JOIN releases_environment qe ON qe.id = qc.environment_id
   JOIN registry_modelversion qv ON qv.id = qc.model_version_id
   JOIN registry_registeredmodel qm ON qm.id = qv.model_id
   WHERE qc.id IN (CHANGE_IDS))"""
BATCH_SQL = _statement(
    CHANGE_SQL,
    build_columns="asked.*, ",
    source="({})".format(
        _statement(
            BUILD_SQL,
            asked=CHANGES_ASKED,
            asked_columns="asked.*, ",
            ask_environment="asked.q_environment",
            ask_model="asked.q_model",
            ask_version="asked.q_version",
            ask_artifact_sha256="''",
            ask_now="asked.q_now",
        )
    ),
    change_id="asked.q_change_id",
    model_id="asked.m_id",
    policy_id="asked.p_id",
    ask_now="asked.q_now",
)


def gate_questions_for_changes(
    changes: list[ChangeRequest], *, now: datetime | None = None
) -> dict[int, GateQuestion]:
    """The gate's question of each change request, as it stands for the start of its window
    (or now, once it has begun): what the CAB reads to know whether a change will be let
    through when its window opens.
    One statement for the questions and one for the teams that have not signed, whatever the
    number of changes; the facts are those of `gate_question_resolve`, from the same SQL."""
    if not changes:
        return {}
    now = now or timezone.now()
    ids = ", ".join(str(int(change.pk)) for change in changes)
    with connection.cursor() as cursor:
        cursor.execute(BATCH_SQL.replace("CHANGE_IDS", ids), _parameters(now))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    unsigned = _unsigned_teams_of(
        {
            row["c_id"]: (row["p_id"], row["c_kind"], row["c_risk_level"])
            for row in rows
            if row["missing_approval_teams"]
        }
    )
    questions = {}
    for row in rows:
        asked = {
            "environment": row["q_environment"],
            "model": row["q_model"],
            "version": row["q_version"],
            "artifact_sha256": "",
            "change_request": ChangeRequest(pk=row["q_change_id"]).number,
        }
        questions[row["q_change_id"]] = _question(
            asked=asked,
            now=_moment(row["q_now"]),
            named=True,
            build=row,
            change=row,
            unsigned_teams=lambda policy, change: unsigned.get(change.pk, []),
        )
    return questions


def _unsigned_teams_of(
    changes: dict[int, tuple[int, str, str]],
) -> dict[int, list[str]]:
    """Change id (→ its policy in force, kind and risk level) → the approval teams it needs
    there (`EnvironmentPolicy.teams_for`) without a standing approval on it, by name:
    `_unsigned_teams` for many changes in four queries."""
    if not changes:
        return {}
    policy_ids = {policy_id for policy_id, _, _ in changes.values()}
    policies = {
        policy.pk: policy
        for policy in EnvironmentPolicy.objects.filter(pk__in=policy_ids)
        .prefetch_related("approval_teams", "low_risk_approval_teams")
        .select_related("high_risk_team")
    }
    signed = set(
        SignOff.objects.filter(
            change_request_id__in=list(changes),
            kind=SignOffKind.APPROVAL,
            decision=Decision.APPROVE,
            voided_at__isnull=True,
        ).values_list("change_request_id", "team_id")
    )
    unsigned = {}
    for change_id, (policy_id, kind, risk_level) in changes.items():
        change = ChangeRequest(pk=change_id, kind=kind, risk_level=risk_level)
        teams = policies[policy_id].teams_for(change)
        unsigned[change_id] = sorted(
            team.name for team in teams if (change_id, team.pk) not in signed
        )
    return unsigned
