"""Server-rendered SVG charts for the delivery metrics: deployments per week, lead times, and a
timeline of which version was live when. No JavaScript, nothing fetched: plain SVG inlined into
the page.

Accessible by construction: every chart is `role="img"` with a `<title>` and a `<desc>` that
says what it shows in words, every bar, dot and band carries its own `<title>` (read by screen
readers, shown as a tooltip), numbers and versions are written as text, and a failure is told
apart by a hatch pattern and a word, not by colour alone.
"""

import math
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from releases.delivery_metrics import Band, Lane, LeadTime, Period, WeekCount
from releases.models import DeploymentKind

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 720
OK_FILL = "#2e75b6"
BAD_FILL = "#fde8e6"
BAD_STROKE = "#b42318"
INK = "#1b2430"
MUTED = "#5b6675"
LINE = "#d9dee5"
# Light fills, so the dark version labels on them stay readable; one per version in a lane.
BAND_FILLS = ("#dbe8f6", "#e3f3ea", "#fff1dc", "#ece3f6", "#e0f2f1", "#f6e3ec")


def format_duration(duration: timedelta | None) -> str:
    """`3 d 4 h`, `5 h 12 min`, `42 min`: two units at most, the way people say it."""
    if duration is None:
        return "no data"
    minutes = int(duration.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _day(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b}"


def _moment(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def _nice(value: float) -> float:
    """The smallest round number at or above `value`, so that axis ticks read well."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _text(x: float, y: float, text: str, *, anchor: str = "start") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="11" fill="{INK}">'
        f"{escape(text)}</text>"
    )


def _svg(*, ident: str, title: str, desc: str, height: float, body: list[str]) -> SafeString:
    defs = (
        f'<defs><pattern id="{ident}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{BAD_FILL}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{BAD_STROKE}" stroke-width="2.5"/>'
        "</pattern></defs>"
    )
    # Every text and attribute value above is escaped or is a number the module computed.
    return mark_safe(  # noqa: S308  # nosec B308, B703
        f'<svg xmlns="{SVG_NS}" class="chart" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="system-ui, sans-serif">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>{defs}{"".join(body)}</svg>'
    )


def _legend(x: float, y: float, items: list[tuple[str, str]]) -> list[str]:
    """Swatches with their words: (fill, label)."""
    parts = []
    for fill, label in items:
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="12" height="12" fill="{fill}" '
            f'stroke="{MUTED}" stroke-width="0.5"/>'
        )
        parts.append(_text(x + 16, y + 1, label))
        x += 28 + 6.5 * len(label)
    return parts


def deployments_per_week_chart(weeks: list[WeekCount], *, ident: str = "weekly") -> SafeString:
    """Grouped bars per week: successful deployments (solid) beside failed or rolled-back ones
    (hatched), each with its count written above it."""
    left, right, top, bottom, height = 36, 10, 30, 34, 240
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = math.ceil(_nice(max([1] + [max(w.succeeded, w.failed) for w in weeks])))
    slot = plot_w / max(len(weeks), 1)
    bar = min(slot * 0.38, 28)
    label_every = max(1, math.ceil(len(weeks) / 10))
    hatch = f"url(#{ident}-hatch)"
    body = _legend(left, 14, [(OK_FILL, "deployed"), (hatch, "failed or rolled back")])
    for value in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * value / peak
        body.append(
            f'<line x1="{left}" y1="{_n(y)}" x2="{WIDTH - right}" y2="{_n(y)}" stroke="{LINE}"/>'
        )
        body.append(_text(left - 6, y + 4, str(value), anchor="end"))
    for index, week in enumerate(weeks):
        x = left + index * slot + (slot - 2 * bar) / 2
        summary = (
            f"Week from {_day(week.start)} to {_day(week.end)}: {week.succeeded} deployed, "
            f"{week.failed} failed or rolled back"
        )
        group = [f"<g><title>{escape(summary)}</title>"]
        for offset, count, fill in ((0, week.succeeded, OK_FILL), (bar, week.failed, hatch)):
            h = plot_h * count / peak
            y = top + plot_h - h
            stroke = f' stroke="{BAD_STROKE}"' if fill == hatch else ""
            group.append(
                f'<rect x="{_n(x + offset)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}" '
                f'fill="{fill}"{stroke}/>'
            )
            if count:
                group.append(_text(x + offset + bar / 2, y - 3, str(count), anchor="middle"))
        group.append("</g>")
        body.extend(group)
        if index % label_every == 0:
            body.append(_text(x + bar, height - bottom + 16, _day(week.start), anchor="middle"))
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
        f'stroke="{MUTED}"/>'
    )
    total_ok = sum(w.succeeded for w in weeks)
    total_bad = sum(w.failed for w in weeks)
    return _svg(
        ident=ident,
        title="Deployments per week",
        desc=(
            f"{len(weeks)} weeks: {total_ok} successful deployments and {total_bad} failed or "
            "rolled back."
        ),
        height=height,
        body=body,
    )


def _x_axis(period: Period, x0: float, x1: float, y: float, ticks: int = 6) -> list[str]:
    parts = [f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x1)}" y2="{_n(y)}" stroke="{MUTED}"/>']
    for step in range(ticks + 1):
        moment = period.since + (period.until - period.since) * step / ticks
        x = x0 + (x1 - x0) * step / ticks
        parts.append(
            f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x)}" y2="{_n(y + 4)}" stroke="{MUTED}"/>'
        )
        anchor = "start" if step == 0 else "end" if step == ticks else "middle"
        parts.append(_text(x, y + 16, _day(moment), anchor=anchor))
    return parts


def _x(moment: datetime, period: Period, x0: float, x1: float) -> float:
    return x0 + (x1 - x0) * ((moment - period.since) / (period.until - period.since))


def lead_time_chart(
    lead_times: list[LeadTime],
    *,
    period: Period,
    median: timedelta | None,
    ident: str = "lead",
) -> SafeString:
    """One dot per successful deployment at its time, as high as its lead time; hollow when the
    commit time is the version's registration time; the median as a dashed line."""
    left, right, top, bottom, height = 48, 14, 30, 34, 240
    x0, x1 = left, WIDTH - right
    plot_h = height - top - bottom
    hours = [lead.duration / timedelta(hours=1) for lead in lead_times]
    in_days = max(hours, default=0) >= 48
    unit, scale = ("days", 24) if in_days else ("hours", 1)
    peak = _nice(max(hours, default=1) / scale)
    body = _legend(
        left, 14, [(OK_FILL, "commit time from git"), ("#ffffff", "from registration time")]
    )
    for value in sorted({0, peak / 2, peak}):
        y = top + plot_h - plot_h * value / peak
        body.append(f'<line x1="{x0}" y1="{_n(y)}" x2="{x1}" y2="{_n(y)}" stroke="{LINE}"/>')
        body.append(_text(left - 6, y + 4, f"{_n(value)} {unit[0]}", anchor="end"))
    if median is not None:
        y = top + plot_h - plot_h * (median / timedelta(hours=scale)) / peak
        body.append(
            f'<line x1="{x0}" y1="{_n(y)}" x2="{x1}" y2="{_n(y)}" stroke="{INK}" '
            'stroke-dasharray="5 4"/>'
        )
        body.append(_text(x0 + 4, y - 4, f"median {format_duration(median)}"))
    for lead, value in zip(lead_times, hours, strict=True):
        deployment = lead.deployment
        x = _x(deployment.succeeded_at, period, x0, x1)
        y = top + plot_h - plot_h * (value / scale) / peak
        source = "commit time from git" if lead.from_git else "from the registration time"
        label = (
            f"{deployment.model.name} {deployment.model_version.version} to "
            f"{deployment.environment.name} at {_moment(deployment.succeeded_at)}: "
            f"{format_duration(lead.duration)} ({source})"
        )
        fill = OK_FILL if lead.from_git else "#ffffff"
        body.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4.5" fill="{fill}" stroke="{OK_FILL}" '
            f'stroke-width="1.5"><title>{escape(label)}</title></circle>'
        )
    body.extend(_x_axis(period, x0, x1, top + plot_h))
    return _svg(
        ident=ident,
        title="Lead time from commit to deployment",
        desc=(
            f"{len(lead_times)} successful deployments; median lead time {format_duration(median)}."
        ),
        height=height,
        body=body,
    )


def _band_words(band: Band) -> str:
    deployment = band.deployment
    words = (
        f"{deployment.model.name} {band.version.version} live in {deployment.environment.name} "
        f"from {_moment(band.start)} "
        + ("until now" if band.still_live else f"to {_moment(band.end)}")
        + f"; {deployment.get_kind_display().lower()} by {deployment.started_by_name}"
    )
    if band.rolled_back:
        words += "; later rolled back"
    return words


def timeline_chart(lanes: list[Lane], *, period: Period, ident: str = "timeline") -> SafeString:
    """A lane per (environment, model), bands for the versions live in it over the period,
    labelled with the version; a rolled-back version is hatched and marked with a cross."""
    label_w, right, top, lane_h, gap = 190, 14, 10, 26, 8
    x0, x1 = label_w, WIDTH - right
    height = top + len(lanes) * (lane_h + gap) + 30
    body = []
    for index, lane in enumerate(lanes):
        y = top + index * (lane_h + gap)
        name = f"{lane.environment.name} · {lane.model.name}"
        body.append(_text(label_w - 8, y + lane_h / 2 + 4, name, anchor="end"))
        body.append(
            f'<rect x="{x0}" y="{y}" width="{x1 - x0}" height="{lane_h}" fill="#f4f6f9" '
            f'stroke="{LINE}"><title>{escape(name)}</title></rect>'
        )
        fills: dict[int, str] = {}
        for band in lane.bands:
            fill = fills.setdefault(band.version.pk, BAND_FILLS[len(fills) % len(BAND_FILLS)])
            if band.rolled_back:
                fill = f"url(#{ident}-hatch)"
            start = _x(band.start, period, x0, x1)
            width = max(_x(band.end, period, x0, x1) - start, 1)
            label = band.version.version + (" ✕" if band.rolled_back else "")
            if band.deployment.kind == DeploymentKind.ROLLBACK:
                label = f"↩ {label}"
            parts = [
                f"<g><title>{escape(_band_words(band))}</title>",
                f'<rect x="{_n(start)}" y="{y}" width="{_n(width)}" height="{lane_h}" '
                f'fill="{fill}" stroke="{MUTED}" stroke-width="0.75"/>',
            ]
            if width >= 6.5 * len(label) + 8:
                parts.append(_text(start + 4, y + lane_h / 2 + 4, label))
            parts.append("</g>")
            body.extend(parts)
    body.extend(_x_axis(period, x0, x1, top + len(lanes) * (lane_h + gap)))
    return _svg(
        ident=ident,
        title="Which version was live when",
        desc=(
            f"{len(lanes)} environment and model lanes from {_moment(period.since)} to "
            f"{_moment(period.until)}. A cross marks a version later rolled back, an arrow a "
            "rollback."
        ),
        height=height,
        body=body,
    )
