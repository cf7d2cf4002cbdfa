"""The releases part of the demo: dev, test and prod with their policies, the year-end freeze on
prod, and change requests in different states so that every demo approver finds something
waiting. Everything goes through the services; running it again changes nothing (environments,
freezes and change requests are found by name, reason and title)."""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.demo import DEMO_PASSWORD
from portal.models import Team
from registry.models import ModelVersion
from releases.models import ChangeRequest, Environment, EnvironmentPolicy, FreezeWindow
from releases.services import change_requests, policy
from releases.states import Kind

APPROVAL_TEAMS = ["model-risk", "release-management", "platform-operations"]
YEAR_END = "Year-end close: no normal change to production"


def seed(stdout) -> None:
    environments = seed_environments()
    seed_freezes(environments)
    filed = seed_change_requests(environments)
    stdout.write(
        f"Releases: environments {', '.join(environments)}; year-end freeze on prod; "
        f"{filed} demo change requests."
    )


def seed_environments() -> dict[str, Environment]:
    """dev needs no change request, test a peer review, prod a peer review then the three
    approval teams, seven days of soak in test, emergencies with a 72-hour retrospective."""
    teams = {team.slug: team for team in Team.objects.filter(slug__in=APPROVAL_TEAMS)}
    wanted = [
        ("dev", 1, "Shared development cluster.", {"needs_change_request": False}),
        ("test", 2, "Integration test with production-like data.", {}),
        (
            "prod",
            3,
            "Production scoring.",
            {"approval_teams": [teams[slug] for slug in APPROVAL_TEAMS], "soak_days": 7},
        ),
    ]
    environments: dict[str, Environment] = {}
    for name, rank, description, rules in wanted:
        environment = Environment.objects.filter(name=name).first() or (
            policy.environment_create(actor=None, name=name, rank=rank, description=description)
        )
        environments[name] = environment
        if EnvironmentPolicy.objects.filter(environment=environment).exists():
            continue
        rules = {"approval_teams": [], **rules}
        if name == "dev":
            rules["needs_peer_review"] = False
        if name == "prod":
            rules.update(soak_source=environments["test"], retrospective_hours=72)
        policy.environment_policy_change(actor=None, environment=environment, **rules)
    return environments


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
        "Churn forecast 0.2.1 to test",
        "churn-forecast",
        "0.2.1",
        "test",
        Kind.NORMAL,
        2,
        ["peer"],
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
            change_request.refresh_from_db()
            reject = bool(rejection) and index == len(signers) - 1
            change_requests.change_request_sign(
                actor=users[username],
                change_request=change_request,
                decision="reject" if reject else "approve",
                comment=rejection if reject else "",
                password=DEMO_PASSWORD,
                content_digest=change_request.content_digest,
            )
    return ChangeRequest.objects.filter(title__in=[change[0] for change in CHANGES]).count()
