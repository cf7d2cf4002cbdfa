"""The bank-scale data set of `bench_platform.py`, built by the services where a row is one of a
kind and by COPY where there are a hundred thousand of them.

Through the services: the demo (teams, personas, environments, policies, freeze, demo changes),
the CI service account, all 200 registered models (the first ten before the inventory is first
measured), the build the gate is asked about and its approved production change (peer review and
three team sign-offs, with the personas' passwords). By bulk rows: the inventory entries.

By COPY, the history: builds, deployments, change requests with their sign-offs, and the audit
events the services would have written for them. A timeline over 1,000 days: build `g` (model
`g % 200`) is registered at `T0 + g * step`, then deployed ten times within the same step (six to
dev, three to test, one to prod; one attempt in 29 fails). Each build and each deployment result
appends one audit event, chained by `audit.services.chain_event` under the append lock and copied
in by the audit benchmark's `_copy_in`, so the rows are those `audit_record` writes and the chain
verifies. What the bulk path leaves out, and says so in the report: the `deployment.started` event
and the gate decision of each historical deployment (the chain would be three times longer than
the issue's million), and links from historical deployments to change requests.
"""

import io
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit.actions import AuditAction
from bench.bench_audit import _copy_in, _copy_text
from registry.builders import commit_id, digest

MODELS = 200
DEPLOYS_PER_VERSION = 10
SPAN_DAYS = 1000
REPOSITORY = "https://gitlab.example.com/bench/models"
CI_NAME = "bench-ci"
CI_USER_AGENT = "gatehouse-ci/1.0 (bench)"
BATCH = 20_000
OPEN_CHANGES = 24
SOAKED_DAYS = 8
# Six to dev, three to test, one to prod, in that order.
ENVIRONMENT_OF_ATTEMPT = ["dev"] * 6 + ["test"] * 3 + ["prod"]


def model_name(index: int) -> str:
    return f"bench-model-{index:03d}"


def version_name(g: int) -> str:
    per_model = g // MODELS
    return f"{1 + per_model // 100}.{per_model // 10 % 10}.{per_model % 10}"


class Timeline:
    """The history, generated on demand and loaded by prefixes (the benchmark measures at 1,000,
    10,000 and 1,000,000 deployments)."""

    def __init__(self, *, versions: int, now: datetime) -> None:
        self.versions = versions
        # The history ends before the gate's build began its eight days in test: a later build
        # of the same model going live in test would interrupt that soak (rule 7).
        self.end = now - timedelta(days=SOAKED_DAYS + 1)
        self.start = self.end - timedelta(days=SPAN_DAYS)
        self.step = (self.end - self.start) / versions
        self.loaded_versions = 0

    def version_time(self, g: int) -> datetime:
        return self.start + self.step * g

    def deployment_time(self, g: int, attempt: int) -> datetime:
        return self.version_time(g) + self.step * (attempt + 1) / (DEPLOYS_PER_VERSION + 1)


class Loader:
    """Appends builds, deployments and their audit events, prefix by prefix, with ids assigned
    here so that the audit events can name the rows they record."""

    def __init__(self, *, timeline: Timeline, stdout) -> None:
        from portal.models import ServiceAccount
        from registry.models import RegisteredModel, Repository
        from releases.models import Environment

        self.timeline = timeline
        self.stdout = stdout
        self.ci = ServiceAccount.objects.get(name=CI_NAME)
        self.models = {
            m.name: m for m in RegisteredModel.objects.filter(name__startswith="bench-model-")
        }
        self.model_ids = [self.models[model_name(i)].pk for i in range(MODELS)]
        self.repository = Repository.objects.get(url=REPOSITORY)
        self.environments = {e.name: e.pk for e in Environment.objects.all()}
        self.deployments = 0

    def grow_to(self, *, deployments: int) -> None:
        """Load builds and their deployments until `deployments` historical deployments exist."""
        target_versions = -(-deployments // DEPLOYS_PER_VERSION)
        g = self.timeline.loaded_versions
        while g < target_versions:
            last = min(g + BATCH // DEPLOYS_PER_VERSION, target_versions)
            self.deployments += self._load(range(g, last), left=deployments - self.deployments)
            g = self.timeline.loaded_versions = last
        self.stdout.write(f"  loaded {g:,} builds, {self.deployments:,} historical deployments\n")

    def _load(self, builds: range, *, left: int) -> int:
        from registry.models import ModelVersion
        from releases.models import Deployment

        version_rows, deployment_rows, events = [], [], []
        next_version = _next_id(ModelVersion)
        next_deployment = _next_id(Deployment)
        for g in builds:
            version_id = next_version
            next_version += 1
            version_row, event = self._version(g, version_id)
            version_rows.append(version_row)
            events.append(event)
            for attempt in range(DEPLOYS_PER_VERSION):
                if len(deployment_rows) >= left:
                    break
                deployment_row, event = self._deployment(g, attempt, next_deployment, version_id)
                next_deployment += 1
                deployment_rows.append(deployment_row)
                events.append(event)
        with transaction.atomic():
            copy_rows(ModelVersion, version_rows)
            copy_rows(Deployment, deployment_rows)
            _reset_sequence(ModelVersion)
            _reset_sequence(Deployment)
            append_events(events)
        return len(deployment_rows)

    def _version(self, g: int, pk: int) -> tuple[dict, dict]:
        name = model_name(g % MODELS)
        version = version_name(g)
        wanted = {
            "commit_sha": commit_id(f"{name} {version}"),
            "ref": "refs/heads/main",
            "build_id": f"pipeline-{100_000 + g}",
            "build_url": f"https://gitlab.example.com/bench/models/-/pipelines/{100_000 + g}",
            "artifact_uri": f"s3://bank-ml-models/{name}/{version}/model.pkl",
            "artifact_sha256": digest(f"{name} {version}"),
            "framework": "lightgbm 4.5",
            "params": {"learning_rate": 0.05, "num_leaves": 63},
            "metrics": {"auc": round(0.8 + (g % 97) / 1000, 3)},
            "env_lock_sha256": digest(f"uv.lock {g % 13}"),
            "model_card": {},
        }
        at = self.timeline.version_time(g)
        row = {
            "id": pk,
            "model_id": self.model_ids[g % MODELS],
            "version": version,
            "repository_id": self.repository.pk,
            "created_by_user_id": None,
            "created_by_service_id": self.ci.pk,
            "created_by_name": self.ci.name,
            "created_at": at,
            **wanted,
        }
        event = self._event(
            at=at,
            action=AuditAction.MODEL_VERSION_REGISTERED,
            object_type="registry.modelversion",
            object_id=pk,
            object_repr=f"{name} {version}",
            environment="",
            data={
                "model": name,
                "version": version,
                "repository": REPOSITORY,
                **wanted,
                "datasets": [],
            },
        )
        return row, event

    def _deployment(self, g: int, attempt: int, pk: int, version_id: int) -> tuple[dict, dict]:
        name = model_name(g % MODELS)
        environment = ENVIRONMENT_OF_ATTEMPT[attempt]
        started = self.timeline.deployment_time(g, attempt)
        finished = started + timedelta(seconds=40)
        failed = (g * DEPLOYS_PER_VERSION + attempt) % 29 == 0
        status = "failed" if failed else "succeeded"
        row = {
            "id": pk,
            "environment_id": self.environments[environment],
            "model_id": self.model_ids[g % MODELS],
            "model_version_id": version_id,
            "change_request_id": None,
            "kind": "deploy",
            "rollback_of_id": None,
            "status": status,
            "started_by_user_id": None,
            "started_by_service_id": self.ci.pk,
            "started_by_name": self.ci.name,
            "started_at": started,
            "finished_at": finished,
            "succeeded_at": None if failed else finished,
            "pipeline_url": "",
            "health_url": "",
            "detail": "Pod crash loop: readiness probe failed." if failed else "",
            "reason": "",
        }
        event = self._event(
            at=finished,
            action=AuditAction.DEPLOYMENT_FAILED if failed else AuditAction.DEPLOYMENT_SUCCEEDED,
            object_type="releases.deployment",
            object_id=pk,
            object_repr=f"Deploy {name} {version_name(g)} to {environment}",
            environment=environment,
            data={
                "deployment": pk,
                "model": name,
                "version": version_name(g),
                "change_request": None,
                "status": status,
                "detail": row["detail"],
            },
        )
        return row, event

    def _event(self, *, at: datetime, object_id: int, **columns) -> dict:
        return {
            "occurred_at": at,
            "actor_kind": "service",
            "actor_id": str(self.ci.pk),
            "actor_name": self.ci.name,
            "object_id": str(object_id),
            "request_id": secrets.token_hex(16),
            "ip": "10.20.0.5",
            "user_agent": CI_USER_AGENT,
            **columns,
        }


@contextmanager
def indexes_deferred():
    """Drop the filter indexes of the big tables for a bulk load and build them once at the end,
    as a database restore would; keys, unique and foreign key indexes stay, so every row is
    still checked on the way in."""
    from audit.models import AuditEvent
    from registry.models import ModelVersion
    from releases.models import Deployment

    models = (AuditEvent, ModelVersion, Deployment)
    with connection.schema_editor() as editor:
        for model in models:
            for index in model._meta.indexes:
                editor.remove_index(model, index)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            for model in models:
                for index in model._meta.indexes:
                    editor.add_index(model, index)


def _next_id(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}")
        return cursor.fetchone()[0]


def _reset_sequence(model) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )


def _copy_value(field, value) -> str:
    if value is None:
        return "\\N"
    if field.get_internal_type() == "JSONField":
        return _copy_text(json.dumps(value, ensure_ascii=False))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return _copy_text(value)


def copy_rows(model, rows: list[dict]) -> None:
    """COPY rows (dicts keyed by column) into the model's table: the values `save()` would write,
    without per-row SQL. A column a row leaves out gets the field's default, as `save()` would
    give it, so fields added later need no change here."""
    if not rows:
        return
    fields = [
        f
        for f in model._meta.local_concrete_fields
        if f.attname in rows[0] or not (f.primary_key or f.null)
    ]
    defaults = {f.attname: f.get_default() for f in fields}
    buffer = io.StringIO()
    for row in rows:
        values = {**defaults, **row}
        buffer.write("\t".join(_copy_value(f, values[f.attname]) for f in fields) + "\n")
    buffer.seek(0)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {model._meta.db_table} ({columns}) FROM STDIN", buffer)


def append_events(columns: list[dict]) -> None:
    """Chain and COPY the events in the caller's transaction, under the append lock, exactly as
    `audit_record` would have made them one by one."""
    from audit.services import _lock_tail, chain_event

    seq, prev_hash = _lock_tail()
    events = []
    for values in columns:
        seq += 1
        event = chain_event(
            seq=seq,
            prev_hash=prev_hash,
            occurred_at=values["occurred_at"],
            **{k: v for k, v in values.items() if k != "occurred_at"},
        )
        prev_hash = event.hash
        events.append(event)
    _copy_in(events)


def change_request_rows(
    *, count: int, now: datetime, users: dict, teams: dict, environments: dict, versions: list
) -> Iterator[tuple[dict, list[dict]]]:
    """`count` change requests with their sign-offs: the first `OPEN_CHANGES` still open (in
    review, in approval or approved: a busy week's work in flight), the rest history, deployed
    or closed over the last 1,000 days. The history grows; the work in flight does not."""
    from releases.models import EnvironmentPolicy

    policies = {
        name: EnvironmentPolicy.objects.filter(environment_id=pk).order_by("-version").first()
        for name, pk in environments.items()
    }
    approvers = [
        ("risk", "model-risk"),
        ("release", "release-management"),
        ("platform", "platform-operations"),
    ]
    history = ["deployed"] * 30 + ["expired", "cancelled", "rejected"] * 5
    in_flight = ["in_review", "in_approval", "approved"]
    for n in range(count):
        state = in_flight[n % 3] if n < OPEN_CHANGES else history[n % len(history)]
        environment = "prod" if n % 3 else "test"
        version_id, version_label = versions[n % len(versions)]
        filed = now - timedelta(days=SPAN_DAYS) + timedelta(days=SPAN_DAYS) * n / count
        if state in {"in_review", "in_approval", "approved"}:
            filed = now - timedelta(hours=6)
        start = filed + timedelta(days=2)
        policy = policies[environment]
        content = digest(f"cr {n}")
        row = {
            "kind": "normal",
            "state": state,
            "model_version_id": version_id,
            "environment_id": environments[environment],
            "requester_id": users["requester"].pk,
            "team_id": teams["data-science"].pk,
            "title": f"Release {version_label} to {environment}",
            "justification": "Better recall on the latest quarter; backtest attached.",
            "risk_impact": "Scores shift for about 2% of customers.",
            "test_evidence": f"Backtest report for {version_label}.",
            "rollback_plan": "Roll back to the version live before, through the portal.",
            "window_start": start,
            "window_end": start + timedelta(hours=4),
            "incident_ref": "",
            "retires_model": False,
            "content_digest": content,
            "policy_id": policy.pk,
            "created_at": filed,
            "updated_at": filed + timedelta(hours=1),
            "submitted_at": filed,
            "retrospective_due_at": None,
        }
        signers = []
        if state != "in_review":
            signers.append(("peer_review", "peer", None))
        if state in {"deployed", "approved", "expired"} and environment == "prod":
            signers += [("approval", user, team) for user, team in approvers]
        sign_offs = [
            {
                "kind": kind,
                "team_id": teams[team].pk if team else None,
                "signer_id": users[user].pk,
                "decision": "reject"
                if state == "rejected" and i == len(signers) - 1
                else "approve",
                "comment": "",
                "meaning": f"I {'reviewed' if kind == 'peer_review' else 'approve'} this change",
                "content_digest": content,
                "policy_id": policy.pk,
                "reauthenticated": True,
                "signed_at": filed + timedelta(minutes=10 * (i + 1)),
                "voided_at": None,
                "voided_reason": "",
            }
            for i, (kind, user, team) in enumerate(signers)
        ]
        yield row, sign_offs


def load_change_requests(*, count: int, stdout) -> None:
    """Bulk-load `count` change requests and their sign-offs (ids assigned here)."""
    from django.contrib.auth import get_user_model

    from portal.models import Team
    from registry.models import ModelVersion
    from releases.models import ChangeRequest, Environment, SignOff

    if count <= 0:
        return
    now = timezone.now()
    users = {u.username: u for u in get_user_model().objects.all()}
    teams = {t.slug: t for t in Team.objects.all()}
    environments = {e.name: e.pk for e in Environment.objects.all()}
    versions = [
        (pk, f"{name} {version}")
        for pk, name, version in ModelVersion.objects.filter(model__name__startswith="bench-model-")
        .order_by("pk")
        .values_list("pk", "model__name", "version")[:count]
    ]
    next_cr = _next_id(ChangeRequest)
    cr_rows, sign_off_rows = [], []
    for row, sign_offs in change_request_rows(
        count=count, now=now, users=users, teams=teams, environments=environments, versions=versions
    ):
        row["id"] = next_cr
        for sign_off in sign_offs:
            sign_off["change_request_id"] = next_cr
        next_cr += 1
        cr_rows.append(row)
        sign_off_rows += sign_offs
    next_sign_off = _next_id(SignOff)
    for offset, sign_off in enumerate(sign_off_rows):
        sign_off["id"] = next_sign_off + offset
    with transaction.atomic():
        copy_rows(ChangeRequest, cr_rows)
        copy_rows(SignOff, sign_off_rows)
        _reset_sequence(ChangeRequest)
        _reset_sequence(SignOff)
    stdout.write(f"  loaded {len(cr_rows):,} change requests, {len(sign_off_rows):,} sign-offs\n")


def load_numbered_versions(*, model_name: str, upto: int, stdout) -> None:
    """Builds of one model numbered by the portal (1, 2, 3 …) up to `upto`, with their audit
    events, and the model's highest number moved as the registration service moves it."""
    from portal.models import ServiceAccount
    from registry.models import ModelVersion, RegisteredModel, Repository

    model = RegisteredModel.objects.get(name=model_name)
    ci = ServiceAccount.objects.get(name=CI_NAME)
    repository = Repository.objects.get(url=REPOSITORY)
    first = model.highest_version_number + 1
    if first > upto:
        return
    start = timezone.now() - timedelta(days=SPAN_DAYS)
    step = timedelta(days=SPAN_DAYS) / (upto - first + 2)
    pk = _next_id(ModelVersion)
    rows, events = [], []
    for offset, number in enumerate(range(first, upto + 1)):
        key = f"{model_name} build {number}"
        at = start + step * offset
        wanted = {
            "commit_sha": commit_id(key),
            "ref": "refs/heads/main",
            "build_id": f"numbered-{number}",
            "build_url": f"https://gitlab.example.com/bench/models/-/pipelines/numbered-{number}",
            "artifact_uri": f"s3://bank-ml-models/{model_name}/{number}/model.pkl",
            "artifact_sha256": digest(key),
            "framework": "lightgbm 4.5",
            "params": {},
            "metrics": {"auc": 0.9},
            "env_lock_sha256": "",
            "model_card": {},
        }
        rows.append(
            {
                "id": pk + offset,
                "model_id": model.pk,
                "version": str(number),
                "repository_id": repository.pk,
                "created_by_user_id": None,
                "created_by_service_id": ci.pk,
                "created_by_name": ci.name,
                "created_at": at,
                **wanted,
            }
        )
        events.append(
            {
                "occurred_at": at,
                "actor_kind": "service",
                "actor_id": str(ci.pk),
                "actor_name": ci.name,
                "action": AuditAction.MODEL_VERSION_REGISTERED,
                "object_type": "registry.modelversion",
                "object_id": str(pk + offset),
                "object_repr": f"{model_name} {number}",
                "environment": "",
                "data": {
                    "model": model_name,
                    "version": str(number),
                    "repository": REPOSITORY,
                    **wanted,
                    "datasets": [],
                },
                "request_id": secrets.token_hex(16),
                "ip": "10.20.0.5",
                "user_agent": CI_USER_AGENT,
            }
        )
    with transaction.atomic():
        copy_rows(ModelVersion, rows)
        _reset_sequence(ModelVersion)
        RegisteredModel.objects.filter(pk=model.pk).update(highest_version_number=upto)
        append_events(events)
    stdout.write(f"  loaded {len(rows):,} numbered builds of {model_name} (up to {upto:,})\n")


def inventory_fill() -> int:
    """Give every model without one an inventory entry like the demo's, as bulk rows (what the
    inventory reads, not the audit events of `model_inventory_update`): a purpose, a business
    and a model risk owner, a tier with its rationale, the model before it as an upstream model
    and a dataset, a next validation date; one model in ten, by registration order, is in
    production with that date passed, so the page looks up what runs under it. Returns how many
    models were filled."""
    from django.contrib.auth import get_user_model

    from registry.models import LifecycleStatus, RegisteredModel

    owner = get_user_model().objects.get(username="risk")
    today = timezone.localdate()
    ordered = list(RegisteredModel.objects.order_by("pk").only("pk", "purpose"))
    pending = [(index, model) for index, model in enumerate(ordered) if not model.purpose]
    for index, model in pending:
        lapsed = index % 10 == 0
        model.purpose = f"Scores the bank's book {index} for the benchmark."
        model.business_owner = "Head of Retail Credit"
        model.model_risk_owner_id = owner.pk
        model.risk_tier = 1 + index % 3
        model.tier_rationale = "Materiality, complexity and reliance as the benchmark sets them."
        model.upstream_datasets = [f"transactions-{index % 7}"]
        model.lifecycle_status = (
            LifecycleStatus.IN_PRODUCTION if lapsed else LifecycleStatus.APPROVED
        )
        model.next_validation_due = today + timedelta(days=-5 if lapsed else 30 + index % 300)
    RegisteredModel.objects.bulk_update(
        [model for _, model in pending],
        [
            "purpose",
            "business_owner",
            "model_risk_owner",
            "risk_tier",
            "tier_rationale",
            "upstream_datasets",
            "lifecycle_status",
            "next_validation_due",
        ],
        batch_size=500,
    )
    upstream = RegisteredModel.upstream_models.through
    upstream.objects.bulk_create(
        upstream(from_registeredmodel_id=model.pk, to_registeredmodel_id=ordered[index - 1].pk)
        for index, model in pending
        if index
    )
    return len(pending)
