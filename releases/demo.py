"""The releases part of the demo: dev, test and prod with their policies, the year-end freeze on
prod, and change requests in different states so that every demo approver finds something
waiting. Everything goes through the services, mostly by `releases.builders`; running it again
changes nothing (environments, freezes and change requests are found by name, reason and
title)."""

import hashlib
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from organisation import services as portal_services
from organisation.demo import DEMO_PASSWORD
from portal.models import Scope, ServiceAccount, Team
from registry import services as registry_services
from registry.models import ModelVersion
from releases.builders import Clock, deploy, sign
from releases.builders import environments_create as seed_environments
from releases.models import (
    ChangeRequest,
    Deployment,
    Environment,
    FreezeWindow,
    MaintenanceWindow,
)
from releases.selectors.live import live_in_environment
from releases.services import calendar, change_requests, deployments, policy, standard_changes
from releases.states import Kind

YEAR_END = "Year-end close: no normal change to production"
NODE_UPGRADE = "Kubernetes node upgrade of the scoring cluster"


def seed(stdout) -> None:
    environments = seed_environments()
    seed_production_mark(environments["prod"])
    seed_freezes(environments)
    seed_maintenance(environments)
    seed_deployment_history(environments)
    emergency = seed_emergency_history(environments)
    filed = seed_change_requests(environments)
    draft = seed_requester_work(environments)
    seed_retirement(environments)
    standard = seed_standard_changes(environments)
    seed_validation_required(environments["prod"])
    stdout.write(
        f"Releases: environments {', '.join(environments)}; year-end freeze and a maintenance "
        "window on prod; "
        f"{filed} demo change requests; {Deployment.objects.count()} deployments over six weeks."
    )
    stdout.write(
        f"Releases: emergency {emergency} with its retrospective overdue; "
        f"draft {draft} for the requester; standard change template {standard} with a "
        "standard change deployed under it in test."
    )


def seed_production_mark(prod: Environment) -> None:
    """prod carries the production guardrail, so the demo's admin sees it refuse a weaker policy."""
    if not prod.is_production:
        policy.environment_update(
            actor=None,
            environment=prod,
            rank=prod.rank,
            description=prod.description,
            is_production=True,
        )


def seed_validation_required(prod: Environment) -> None:
    """From now on prod takes only validated builds (docs/model-risk.md): the history before
    was deployed under the earlier policy version, as a real rollout would be."""
    current = prod.policies.order_by("-version").first()
    if current.requires_validation:
        return
    _policy_with(prod, requires_validation=True)


def _policy_with(environment: Environment, **changes) -> None:
    """The next policy version of `environment`: the one in force with `changes`."""
    current = environment.policies.order_by("-version").first()
    rules = {name: getattr(current, name) for name in policy.POLICY_FIELDS}
    rules.update(
        approval_teams=list(current.approval_teams.all()),
        soak_source=current.soak_source,
        low_risk_approval_teams=list(current.low_risk_approval_teams.all()),
        high_risk_team=current.high_risk_team,
        **changes,
    )
    policy.environment_policy_change(actor=None, environment=environment, **rules)


def seed_freezes(environments: dict[str, Environment]) -> None:
    prod = environments["prod"]
    if FreezeWindow.objects.filter(environment=prod, reason=YEAR_END).exists():
        return
    today = timezone.localdate()
    year = today.year if today < today.replace(month=12, day=20) else today.year + 1
    tz = timezone.get_current_timezone()
    policy.freeze_window_create(
        actor=None,
        environment=prod,
        starts_at=datetime(year, 12, 20, tzinfo=tz),
        ends_at=datetime(year + 1, 1, 5, tzinfo=tz),
        reason=YEAR_END,
    )


def seed_maintenance(environments: dict[str, Environment]) -> None:
    """Next Saturday night's platform maintenance, for the change calendar."""
    prod = environments["prod"]
    if MaintenanceWindow.objects.filter(environment=prod, title=NODE_UPGRADE).exists():
        return
    today = timezone.localdate()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    starts = timezone.make_aware(datetime.combine(saturday, datetime.min.time())) + timedelta(
        hours=22
    )
    calendar.maintenance_window_create(
        actor=None,
        environment=prod,
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        title=NODE_UPGRADE,
    )


def _window(environment: Environment, days: int) -> tuple[datetime, datetime]:
    """A four-hour window `days` from now at 08:00, moved past any freeze it would fall in."""
    start = (timezone.localtime() + timedelta(days=days)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    for freeze in FreezeWindow.objects.filter(
        environment=environment, cancelled_at__isnull=True
    ).order_by("starts_at"):
        if freeze.starts_at < start + timedelta(hours=4) and freeze.ends_at > start:
            start = timezone.localtime(freeze.ends_at).replace(hour=8, minute=0) + timedelta(days=1)
    return start, start + timedelta(hours=4)


# (title, model, version, environment, kind, days ahead, signers in order, rejection)
CHANGES = [
    (
        "Credit scoring 1.2.1: fix leakage in days past due",
        "credit-scoring",
        "1.2.1",
        "prod",
        Kind.NORMAL,
        9,
        [],
        "",
    ),
    (
        "Fraud detection 1.1.0: merchant features and 0.1% alert threshold",
        "fraud-detection",
        "1.1.0",
        "prod",
        Kind.NORMAL,
        6,
        ["peer"],
        "",
    ),
    (
        "Credit scoring 1.2.0: recalibration on 2026-Q3 defaults",
        "credit-scoring",
        "1.2.0",
        "prod",
        Kind.NORMAL,
        4,
        ["peer", "risk"],
        "",
    ),
    (
        "Churn forecast 0.2.1 to production",
        "churn-forecast",
        "0.2.1",
        "prod",
        Kind.NORMAL,
        1,
        ["peer", "risk", "release", "platform"],
        "",
    ),
    (
        "Churn forecast 0.2.0 to production",
        "churn-forecast",
        "0.2.0",
        "prod",
        Kind.NORMAL,
        5,
        ["peer", "risk"],
        "No validation report for the new survival model; file it with Model Risk first.",
    ),
    (
        "Fraud detection 1.1.0: stop the false-positive storm",
        "fraud-detection",
        "1.1.0",
        "prod",
        Kind.EMERGENCY,
        0,
        [],
        "",
    ),
]


def seed_change_requests(environments: dict[str, Environment]) -> int:
    """Each demo approver finds something waiting: `peer` a peer review, `risk`, `release` and
    `platform` approvals, `changemgr` an emergency authorisation."""
    users = {user.username: user for user in get_user_model().objects.all()}
    requester = users["requester"]
    for title, model, version, env, kind, days, signers, rejection in CHANGES:
        if ChangeRequest.objects.filter(title=title).exists():
            continue
        build = ModelVersion.objects.filter(model__name=model, version=version).first()
        if build is None:
            continue
        environment = environments[env]
        start, end = _window(environment, days) if kind == Kind.NORMAL else (None, None)
        change_request = change_requests.change_request_file(
            actor=requester,
            kind=kind,
            model_version=build,
            environment=environment,
            title=title,
            justification=(
                "Card-not-present fraud alerts tripled since the scheme change; analysts "
                "cannot keep up."
                if kind == Kind.EMERGENCY
                else f"Promote {model} {version}: better metrics on the latest data."
            ),
            risk_impact="Scores shift for about 2% of customers; monitored daily for a week.",
            test_evidence=f"Backtest report for {model} {version} attached to the build.",
            rollback_plan="Roll back to the version live before, through the portal.",
            window_start=start,
            window_end=end,
            incident_ref="INC-2026-1142" if kind == Kind.EMERGENCY else "",
        )
        for index, username in enumerate(signers):
            reject = bool(rejection) and index == len(signers) - 1
            sign(
                users[username],
                change_request,
                "reject" if reject else "approve",
                comment=rejection if reject else "",
            )
    return ChangeRequest.objects.filter(title__in=[change[0] for change in CHANGES]).count()


# Deployment history (the deployments area): six weeks of releases across dev, test and prod,
# through the change request and deployment services on a controlled clock.

HISTORY_DAYS = 42
HISTORY_PIPELINES = "https://gitlab.example.com/data-science/credit-models/-/pipelines"
HISTORY_ROLLBACK_REASON = "False positives doubled on the new merchant features; back to 0.9.0."

# (day from the start, model, version, environment, outcome): "ok", or "fail" then a retry the
# same day, or "rollback" the next day. Prod always comes at least seven days after test.
HISTORY = [
    (0, "credit-scoring", "1.0.0", "dev", "ok"),
    (1, "credit-scoring", "1.0.0", "test", "ok"),
    (2, "fraud-detection", "0.9.0", "dev", "ok"),
    (3, "fraud-detection", "0.9.0", "test", "ok"),
    (4, "churn-forecast", "0.1.0", "dev", "ok"),
    (5, "churn-forecast", "0.1.0", "test", "ok"),
    (9, "credit-scoring", "1.0.0", "prod", "ok"),
    (11, "fraud-detection", "0.9.0", "prod", "ok"),
    (13, "churn-forecast", "0.1.0", "prod", "ok"),
    (14, "credit-scoring", "1.1.0", "dev", "ok"),
    (15, "credit-scoring", "1.1.0", "test", "ok"),
    (16, "fraud-detection", "1.0.0", "dev", "ok"),
    (17, "fraud-detection", "1.0.0", "test", "ok"),
    (20, "churn-forecast", "0.2.0", "dev", "ok"),
    (21, "churn-forecast", "0.2.0", "test", "ok"),
    (23, "credit-scoring", "1.1.0", "prod", "fail"),
    (26, "fraud-detection", "1.0.0", "prod", "rollback"),
    (30, "credit-scoring", "1.2.0", "dev", "ok"),
    (31, "credit-scoring", "1.2.0", "test", "ok"),
    (36, "fraud-detection", "1.1.0", "dev", "ok"),
    (37, "fraud-detection", "1.1.0", "test", "ok"),
    (38, "credit-scoring", "1.2.1", "dev", "ok"),
    (39, "churn-forecast", "0.2.1", "dev", "ok"),
    # 0.2.1 is live in test for a day, then 0.2.0 goes back: 0.2.1 has not soaked (rule 7), and
    # its approved production change below waits with that evidence.
    (40, "churn-forecast", "0.2.1", "test", "ok"),
    (41, "churn-forecast", "0.2.0", "test", "ok"),
]
PROD_SIGNERS = ["peer", "risk", "release", "platform"]


def seed_deployment_history(environments: dict[str, Environment]) -> int:
    """Every release goes through the same services as in real life, each step at its own past
    moment: the change request filed and signed, the gate asked at deployment start, the result
    reported. Written once: when the demo's history exists, nothing is added."""
    if Deployment.objects.filter(pipeline_url__startswith=HISTORY_PIPELINES).exists():
        return Deployment.objects.count()
    users = {user.username: user for user in get_user_model().objects.all()}
    pipeline = _history_pipeline()
    start = (timezone.localtime() - timedelta(days=HISTORY_DAYS)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    runs = iter(range(2000, 3000))
    for day, model, version, name, outcome in HISTORY:
        build = ModelVersion.objects.filter(model__name=model, version=version).first()
        if build is None:
            continue
        environment = environments[name]
        moment = start + timedelta(days=day, hours=1)
        change = _history_change(users, build, environment, moment)
        attempts = ["failed", "succeeded"] if outcome == "fail" else ["succeeded"]
        for attempt, status in enumerate(attempts):
            deploy(
                actor=pipeline,
                environment=environment,
                model_version=build,
                change_request=change,
                clock=Clock(moment + timedelta(hours=4 * attempt)),
                succeed=status == "succeeded",
                took=timedelta(minutes=12),
                detail="Readiness probe timed out after 120 s." if status == "failed" else "",
                pipeline_url=f"{HISTORY_PIPELINES}/{next(runs)}",
            )
        if outcome == "rollback":
            deployments.deployment_rollback(
                actor=users["release"],
                environment=environment,
                model=build.model,
                reason=HISTORY_ROLLBACK_REASON,
                now=moment + timedelta(days=1),
            )
    _history_health(environments)
    return Deployment.objects.count()


def _history_pipeline() -> ServiceAccount:
    """The CD pipeline's service account (its token is issued in the admin when needed): Platform
    Operations runs it for Data Science, which owns the demo's models (rule 15)."""
    account = ServiceAccount.objects.filter(name="cd-pipeline").first()
    if account is None:
        account, _ = portal_services.service_account_create(
            actor=None,
            name="cd-pipeline",
            team=Team.objects.get(slug="platform-operations"),
            scopes=[Scope.DEPLOYMENTS_WRITE, Scope.GATE_READ],
            granted_teams=[Team.objects.get(slug="data-science")],
        )
    return account


def _history_change(
    users: dict, build: ModelVersion, environment: Environment, moment: datetime
) -> ChangeRequest | None:
    """The change the release goes under, filed two days before (a day for test) and signed
    by the peer and, for prod, one approver per team. dev needs none."""
    policy_now = environment.policies.order_by("-version").first()
    if not policy_now.needs_change_request:
        return None
    filed_at = moment - timedelta(days=2 if environment.name == "prod" else 1)
    change = change_requests.change_request_file(
        actor=users["requester"],
        model_version=build,
        environment=environment,
        title=f"{build.model.name} {build.version} to {environment.name}",
        justification=f"Promote {build.model.name} {build.version}: better metrics in backtest.",
        risk_impact="Scores shift for about 1% of customers; monitored for a week.",
        test_evidence=f"Backtest report attached to build {build.build_id}.",
        rollback_plan="Roll back to the version live before, through the portal.",
        window_start=moment - timedelta(hours=1),
        window_end=moment + timedelta(hours=8),
        now=filed_at,
    )
    signers = PROD_SIGNERS if environment.name == "prod" else ["peer"]
    for index, username in enumerate(signers):
        sign(users[username], change, now=filed_at + timedelta(hours=2 + index))
    change.refresh_from_db()
    return change


def _history_health(environments: dict[str, Environment]) -> None:
    """A recent probe of everything live; churn-forecast in dev reports a digest the ledger did
    not put there (rule 14), so the flag shows on the dev page."""
    probe_at = timezone.now() - timedelta(minutes=5)
    for environment in environments.values():
        for deployment in live_in_environment(environment=environment):
            stray = environment.name == "dev" and deployment.model.name == "churn-forecast"
            deployments.health_check_record(
                deployment=deployment,
                ok=True,
                latency_ms=40 + deployment.pk % 60,
                status_code=200,
                reported_sha256=(
                    hashlib.sha256(b"hand-copied hotfix").hexdigest()
                    if stray
                    else deployment.model_version.artifact_sha256
                ),
                now=probe_at,
            )


# Standard changes (issue 18): three weeks ago, before the team's rollback and emergency, its
# clean record earned churn-forecast's monthly retraining a template, approved once through
# prod's full path; a retraining on new deposits data (the same code) then went to test under it
# with a peer review alone.

TEMPLATE_TITLE = "Standard change: monthly retraining of churn-forecast on new deposits data"
TEMPLATE_DAY = 17
RETRAINED_VERSION = "0.1.1"


def seed_standard_changes(environments: dict[str, Environment]) -> str:
    existing = ChangeRequest.objects.filter(title=TEMPLATE_TITLE).first()
    if existing is not None:
        return f"ST-{existing.standard_template_id}"
    base = ModelVersion.objects.filter(model__name="churn-forecast", version="0.1.0").first()
    if base is None:
        return "none"
    users = {user.username: user for user in get_user_model().objects.all()}
    start = (timezone.localtime() - timedelta(days=HISTORY_DAYS)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    filed_at = start + timedelta(days=TEMPLATE_DAY)
    _policy_with(environments["test"], standard_changes_allowed=True)
    _policy_with(environments["prod"], standard_changes_allowed=True)
    approval = standard_changes.standard_template_file(
        actor=users["requester"],
        base_version=base,
        environments=[environments["test"], environments["prod"]],
        pipeline=base.build_url.rsplit("/", 1)[0] + "/",
        allowed_paths="data/**\nconfigs/*.yaml",
        valid_until=timezone.now() + timedelta(days=60),
        max_uses=12,
        title=TEMPLATE_TITLE,
        justification="Each month churn-forecast is retrained on the new deposits snapshot with "
        "the same code and pipeline; the full path for every retraining adds nothing.",
        risk_impact="Scores shift for under 1% of customers a month; monitored daily.",
        test_evidence="Twelve monthly backtests of 2025 within 0.01 of the c-index.",
        rollback_plan="Roll back to the version live before, through the portal.",
        now=filed_at,
    )
    for index, username in enumerate(PROD_SIGNERS):
        sign(users[username], approval, now=filed_at + timedelta(hours=1 + index))
    retrained = registry_services.model_version_register(
        actor=None,
        model="churn-forecast",
        version=RETRAINED_VERSION,
        repository=base.repository.url,
        commit_sha=base.commit_sha,
        ref="main",
        build_id=f"{base.build_id}-r1",
        build_url=f"{base.build_url}-r1",
        artifact_uri=f"s3://bank-ml-models/churn-forecast/{RETRAINED_VERSION}/model.bin",
        artifact_sha256=hashlib.sha256(b"churn-forecast 0.1.1 retrained").hexdigest(),
        framework=base.framework,
        datasets=[{"name": "deposits", "version": "2026-07"}],
        env_lock_sha256=base.env_lock_sha256,
    )[0]
    moment = filed_at + timedelta(days=2)
    change = standard_changes.standard_change_file(
        actor=users["requester"],
        template=approval.standard_template,
        model_version=retrained,
        environment=environments["test"],
        title=f"churn-forecast {RETRAINED_VERSION}: retrained on the July deposits snapshot",
        justification="Monthly retraining under the standard change template.",
        rollback_plan="Roll back to 0.1.0 through the portal.",
        window_start=moment,
        window_end=moment + timedelta(hours=8),
        now=moment - timedelta(hours=3),
    )
    sign(users["peer"], change, now=moment - timedelta(hours=2))
    deploy(
        actor=_history_pipeline(),
        environment=environments["test"],
        model_version=retrained,
        change_request=change,
        clock=Clock(moment + timedelta(hours=1)),
        took=timedelta(minutes=9),
        pipeline_url=f"{HISTORY_PIPELINES}/1999",
    )
    return f"ST-{approval.standard_template_id}"


# The lived-in demo (issue 8): an emergency change whose retrospective is overdue, and a draft the
# requester still has to file, so the change manager, Model Risk and the requester each find work.

EMERGENCY_TITLE = "Churn forecast 0.2.0: retention scores frozen since the product table move"
EMERGENCY_DAY = 33
DRAFT_TITLE = "Credit scoring 1.2.1 to test: fix leakage in days past due"


def seed_emergency_history(environments: dict[str, Environment]) -> str:
    """Nine days ago churn-forecast 0.1.0 stopped scoring; the change manager authorised 0.2.0 as
    an emergency and the pipeline deployed it. Release Management and Platform Operations signed
    their retrospectives; Model Risk's is overdue (rule 11), so it stays flagged."""
    existing = ChangeRequest.objects.filter(title=EMERGENCY_TITLE).first()
    if existing is not None:
        return existing.number
    build = ModelVersion.objects.filter(model__name="churn-forecast", version="0.2.0").first()
    if build is None:
        return "none"
    users = {user.username: user for user in get_user_model().objects.all()}
    prod = environments["prod"]
    filed_at = (timezone.localtime() - timedelta(days=HISTORY_DAYS - EMERGENCY_DAY)).replace(
        hour=7, minute=40, second=0, microsecond=0
    )
    change = change_requests.change_request_file(
        actor=users["requester"],
        kind=Kind.EMERGENCY,
        model_version=build,
        environment=prod,
        title=EMERGENCY_TITLE,
        justification=(
            "0.1.0 reads the retired product table and has scored every customer as stable "
            "since Monday; the retention campaign starts tomorrow."
        ),
        risk_impact="Retention offers only; no credit decision reads this model.",
        test_evidence="0.2.0 ran in test for twelve days on the new product table.",
        rollback_plan="Roll back to 0.1.0 through the portal.",
        incident_ref="INC-2026-1098",
        now=filed_at,
    )
    sign(users["changemgr"], change, now=filed_at + timedelta(minutes=20))
    deployment = deploy(
        actor=_history_pipeline(),
        environment=prod,
        model_version=build,
        change_request=change,
        clock=Clock(filed_at + timedelta(hours=1)),
        took=timedelta(minutes=9),
        pipeline_url=f"{HISTORY_PIPELINES}/3100",
    )
    sign(users["release"], change, now=filed_at + timedelta(days=1, hours=2))
    sign(users["platform"], change, now=filed_at + timedelta(days=2, hours=3))
    deployments.health_check_record(
        deployment=deployment,
        ok=True,
        latency_ms=61,
        status_code=200,
        reported_sha256=build.artifact_sha256,
        now=timezone.now() - timedelta(minutes=5),
    )
    return change.number


RETIREMENT_TITLE = "Retire legacy-scorecard"


def seed_retirement(environments: dict[str, Environment]) -> None:
    """legacy-scorecard is retired the only way a model is: a retirement change for
    production, reviewed and approved by production's teams."""
    if ChangeRequest.objects.filter(title=RETIREMENT_TITLE).exists():
        return
    build = ModelVersion.objects.filter(model__name="legacy-scorecard").first()
    if build is None:
        return
    users = {user.username: user for user in get_user_model().objects.all()}
    prod = environments["prod"]
    start, end = _window(prod, 1)
    change = change_requests.change_request_file(
        actor=users["peer"],
        model_version=build,
        environment=prod,
        title=RETIREMENT_TITLE,
        justification="credit-scoring replaced it in every use; nothing reads its scores now.",
        rollback_plan="None: a retired model is deployed nowhere.",
        window_start=start,
        window_end=end,
        retires_model=True,
    )
    for signer, team in (
        ("requester", None),
        ("risk", "model-risk"),
        ("release", "release-management"),
        ("platform", "platform-operations"),
    ):
        change.refresh_from_db()
        change_requests.change_request_sign(
            actor=users[signer],
            change_request=change,
            decision="approve",
            password=DEMO_PASSWORD,
            content_digest=change.content_digest,
            team=Team.objects.get(slug=team) if team else None,
        )


def seed_requester_work(environments: dict[str, Environment]) -> str:
    """A draft the requester has not filed yet: the leakage fix on its way to test."""
    existing = ChangeRequest.objects.filter(title=DRAFT_TITLE).first()
    if existing is not None:
        return existing.number
    build = ModelVersion.objects.filter(model__name="credit-scoring", version="1.2.1").first()
    if build is None:
        return "none"
    start, end = _window(environments["test"], 3)
    return change_requests.change_request_create(
        actor=get_user_model().objects.get(username="requester"),
        model_version=build,
        environment=environments["test"],
        title=DRAFT_TITLE,
        justification="The days-past-due feature was computed after the observation date.",
        risk_impact="Scores fall for about 3% of customers with recent arrears.",
        test_evidence="Backtest on the September snapshot: Gini unchanged, leakage gone.",
        rollback_plan="Roll back to 1.2.0 through the portal.",
        window_start=start,
        window_end=end,
    ).number
