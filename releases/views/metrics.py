"""The delivery metrics page: the four DORA measures for an environment and model over the last
30, 90 or 365 days, their charts and the timeline of which version was live when. Read-only;
`releases.delivery_metrics` computes, `releases.charts` draws."""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from registry.models import RegisteredModel
from releases import charts
from releases.delivery_metrics import DEFAULT_PERIOD_DAYS, PERIOD_DAYS, delivery_report
from releases.models import Environment

ALL = "all"


@dataclass(frozen=True)
class Selection:
    environment: Environment | None
    model: RegisteredModel | None
    days: int

    @property
    def environment_value(self) -> str:
        return self.environment.name if self.environment else ALL

    @property
    def model_value(self) -> str:
        return self.model.name if self.model else ALL


def _selection(
    request: HttpRequest, environments: list[Environment], models: list[RegisteredModel]
) -> Selection:
    """Unknown values fall back to the defaults: the last environment of the promotion path
    (delivery is measured to production), every model, 90 days."""
    by_name = {environment.name: environment for environment in environments}
    wanted = request.GET.get("environment", "")
    if wanted == ALL or not environments:
        environment = None
    else:
        environment = by_name.get(wanted, environments[-1])
    model = {m.name: m for m in models}.get(request.GET.get("model", ""))
    days = request.GET.get("days", "")
    period = int(days) if days.isdigit() and int(days) in PERIOD_DAYS else DEFAULT_PERIOD_DAYS
    return Selection(environment=environment, model=model, days=period)


@require_GET
def delivery_metrics(request: HttpRequest) -> HttpResponse:
    environments = list(Environment.objects.order_by("rank", "name"))
    models = list(RegisteredModel.objects.order_by("name").only("pk", "name"))
    selection = _selection(request, environments, models)
    report = delivery_report(
        now=timezone.now(),
        days=selection.days,
        environment=selection.environment,
        model=selection.model,
    )
    measures = report.measures
    context = {
        "selection": selection,
        "environments": environments,
        "models": models,
        "periods": PERIOD_DAYS,
        "report": report,
        "measures": measures,
        "weekly_chart": charts.deployments_per_week_chart(report.weeks),
        "lead_chart": charts.lead_time_chart(
            measures.lead_times, period=report.period, median=measures.lead_time_median
        ),
        "timeline_chart": charts.timeline_chart(report.lanes, period=report.period),
    }
    return render(request, "releases/metrics.html", context)
