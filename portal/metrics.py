"""`GET /metrics`: the portal's operational figures in the Prometheus text format, for the bank's
monitoring (docs/operations.md, Metrics).

Every figure is read from the database when Prometheus scrapes, never counted in the process:
the portal runs several web nodes and workers, and each node must give the same answer. A scrape
is the same ten queries however long the history: the gate's counts come from running totals kept
beside its decisions (`GateTally`) rather than from the trail, deployments and change requests
are counted on indexes, and the rest are small tables or indexed aggregates.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from rest_framework import permissions
from rest_framework.views import APIView

from audit.models import AuditVerification
from portal.authentication import TokenScopes, is_service_account
from portal.models import Scope
from portal.notifications import pending_deliveries
from releases.models import (
    ChangeRequest,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    GateTally,
    ReconciliationFinding,
    SignOff,
    SignOffKind,
    UnauthorisedChange,
)
from releases.states import State

# The sign-off latency covers the approvals signed in this window before the scrape.
SIGN_OFF_WINDOW = timedelta(days=30)
HOUR, DAY = 3600, 86400
SIGN_OFF_BUCKETS = (
    HOUR / 4,
    HOUR,
    4 * HOUR,
    8 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    7 * DAY,
    14 * DAY,
)


def _gate(tallies: Iterable[tuple[str, str, bool, str, int]]) -> Iterator[Metric]:
    decisions = CounterMetricFamily(
        "gatehouse_gate_decisions",
        "Decisions of the deployment gate since it was installed, by environment, by the way it "
        "was asked (check: the gate API; deployment: a deployment start; gitlab_approval, "
        "github_rule: a platform; admission: a Kubernetes admission review) and by answer.",
        labels=["environment", "purpose", "answer"],
    )
    reasons = CounterMetricFamily(
        "gatehouse_gate_denial_reasons",
        "Reasons the gate gave for its denials, by stable code (a denial may give several).",
        labels=["environment", "purpose", "code"],
    )
    for environment, purpose, allowed, code, count in tallies:
        if code:
            reasons.add_metric([environment, purpose, code], count)
        else:
            answer = "allow" if allowed else "deny"
            decisions.add_metric([environment, purpose, answer], count)
    yield decisions
    yield reasons


def _deployments(environments: dict[int, str]) -> Metric:
    counts = Counter(
        {
            (environment, kind, status): n
            for environment, kind, status, n in Deployment.objects.values_list(
                "environment_id", "kind", "status"
            )
            .annotate(n=Count("*"))
            .order_by()
        }
    )
    family = GaugeMetricFamily(
        "gatehouse_deployments",
        "Deployments recorded, by environment, kind (deploy or rollback) and status.",
        labels=["environment", "kind", "status"],
    )
    for pk, environment in environments.items():
        for kind in DeploymentKind.values:
            for status in DeploymentStatus.values:
                family.add_metric([environment, kind, status], counts[pk, kind, status])
    return family


def _change_requests(environments: dict[int, str]) -> Metric:
    counts = Counter(
        {
            (environment, state): n
            for environment, state, n in ChangeRequest.objects.values_list(
                "environment_id", "state"
            )
            .annotate(n=Count("*"))
            .order_by()
        }
    )
    family = GaugeMetricFamily(
        "gatehouse_change_requests",
        "Change requests by environment and state.",
        labels=["environment", "state"],
    )
    for pk, environment in environments.items():
        for state in State.values:
            family.add_metric([environment, state], counts[pk, state])
    return family


def _sign_off_latency(now: datetime) -> Iterator[Metric]:
    """From the change's submission to each standing approval sign-off (approve or reject)
    signed in the window. Voided sign-offs are left out: an edit sends the change back to draft
    and a new submission moves `submitted_at`, so their wait is no longer measurable."""
    signed = (
        SignOff.objects.filter(
            kind=SignOffKind.APPROVAL,
            voided_at__isnull=True,
            signed_at__gte=now - SIGN_OFF_WINDOW,
            change_request__submitted_at__isnull=False,
        )
        .values_list(
            "change_request__environment__name",
            "team__slug",
            "signed_at",
            "change_request__submitted_at",
        )
        .order_by()
    )
    waits: dict[tuple[str, str], list[float]] = defaultdict(list)
    for environment, team, signed_at, submitted_at in signed:
        waits[environment, team or ""].append(max((signed_at - submitted_at).total_seconds(), 0))
    family = GaugeHistogramMetricFamily(
        "gatehouse_sign_off_latency_seconds",
        "Seconds from a change's submission to each approval sign-off signed in the last "
        f"{SIGN_OFF_WINDOW.days} days, by environment and approval team (a gauge histogram: "
        "the window slides, so read it with histogram_quantile, not rate).",
        labels=["environment", "team"],
    )
    for (environment, team), seconds in sorted(waits.items()):
        buckets = [
            (floatToGoString(bound), sum(1 for s in seconds if s <= bound))
            for bound in SIGN_OFF_BUCKETS
        ]
        family.add_metric(
            [environment, team], [*buckets, ("+Inf", len(seconds))], gsum_value=sum(seconds)
        )
    yield family


def _notification_queue(now: datetime) -> Iterator[Metric]:
    queue = pending_deliveries(older_than_seconds=0).aggregate(
        depth=Count("id"), oldest=Min("created_at")
    )
    yield GaugeMetricFamily(
        "gatehouse_notifications_undelivered",
        "Notifications whose mail has not gone out yet (the outbox).",
        value=queue["depth"],
    )
    oldest = queue["oldest"]
    yield GaugeMetricFamily(
        "gatehouse_notifications_oldest_undelivered_age_seconds",
        "Age of the oldest notification still waiting for its mail; 0 when none waits.",
        value=max((now - oldest).total_seconds(), 0) if oldest else 0,
    )


def _audit_verification() -> Iterator[Metric]:
    last = AuditVerification.objects.order_by("-finished_at", "-id").values_list(
        "finished_at", "ok"
    )[:1]
    finished_at, ok = last[0] if last else (None, None)
    yield GaugeMetricFamily(
        "gatehouse_audit_verification_finished_timestamp_seconds",
        "When the last verification of the audit chain finished (unix seconds); 0 if it never ran.",
        value=finished_at.timestamp() if finished_at else 0,
    )
    ok_family = GaugeMetricFamily(
        "gatehouse_audit_verification_ok",
        "1 when the last verification found the audit chain intact, 0 when it found it broken; "
        "absent if it never ran.",
    )
    if ok is not None:
        ok_family.add_metric([], 1 if ok else 0)
    yield ok_family


def _open_flags(environments: dict[int, str]) -> Iterator[Metric]:
    unreviewed = Counter(
        dict(
            UnauthorisedChange.objects.filter(reviewed_at__isnull=True)
            .values_list("environment_id")
            .annotate(n=Count("*"))
            .order_by()
        )
    )
    family = GaugeMetricFamily(
        "gatehouse_unauthorised_changes_open",
        "Unauthorised changes (a digest the ledger did not deploy) not reviewed yet.",
        labels=["environment"],
    )
    for pk, environment in environments.items():
        family.add_metric([environment], unreviewed[pk])
    yield family
    yield GaugeMetricFamily(
        "gatehouse_reconciliation_findings_open",
        "Rows the audit trail does not explain (audit_reconcile), not resolved yet.",
        value=ReconciliationFinding.objects.filter(resolved_at__isnull=True).count(),
    )


class GatehouseCollector(Collector):
    """Reads every figure from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        # Counted by environment id, named here: the counts need no join and scan an index.
        environments = dict(Environment.objects.order_by("rank", "name").values_list("pk", "name"))
        yield from _gate(
            GateTally.objects.order_by("environment", "purpose", "allowed", "code").values_list(
                "environment", "purpose", "allowed", "code", "count"
            )
        )
        yield _deployments(environments)
        yield _change_requests(environments)
        yield from _sign_off_latency(now)
        yield from _notification_queue(now)
        yield from _audit_verification()
        yield from _open_flags(environments)


class ReadsMetrics(permissions.BasePermission):
    """Tokens with `metrics:read` (TokenScopes checks the scope) and superusers in a browser."""

    message = (
        "Only administrators and tokens with the 'metrics:read' scope read the metrics: scrape "
        "them with such a token (an administrator issues one in Admin → Service accounts)."
    )

    def has_permission(self, request, view) -> bool:
        return is_service_account(request.user) or request.user.is_superuser


@method_decorator(never_cache, name="dispatch")
class MetricsView(APIView):
    """The Prometheus scrape target. Never cached: a proxy's copy would be a stale figure."""

    permission_classes = [permissions.IsAuthenticated, TokenScopes, ReadsMetrics]
    required_scopes = {"GET": Scope.METRICS_READ.value}

    @extend_schema(exclude=True)
    def get(self, request):
        return HttpResponse(
            generate_latest(GatehouseCollector()), content_type=CONTENT_TYPE_PLAIN_0_0_4
        )
