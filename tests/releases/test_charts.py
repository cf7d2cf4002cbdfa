"""The SVG charts: well-formed XML, titled and described, every mark labelled in words, failures
told apart by more than colour, text escaped. Built from in-memory ledger rows: drawing reads
nothing from the database."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from registry.models import ModelVersion, RegisteredModel
from releases import charts
from releases.delivery_metrics import Band, Lane, LeadTime, Measures, Period, WeekCount
from releases.models import Deployment, DeploymentKind, DeploymentStatus, Environment

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PERIOD = Period.ending(NOW, 30)


def parse_svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - markup the project drew itself


def texts(tree: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in tree.iter(f"{SVG}text")]


def titles(tree: ET.Element) -> list[str]:
    return [node.text or "" for node in tree.iter(f"{SVG}title")]


def assert_accessible(tree: ET.Element) -> None:
    assert tree.tag == f"{SVG}svg"
    assert tree.get("role") == "img"
    title_id, desc_id = tree.get("aria-labelledby").split()
    assert tree.find(f"{SVG}title").get("id") == title_id
    assert tree.find(f"{SVG}desc").get("id") == desc_id
    assert tree.find(f"{SVG}title").text
    assert not list(tree.iter(f"{SVG}script"))


def row(
    version: str,
    *,
    pk: int,
    kind: str = DeploymentKind.DEPLOY,
    status: str = DeploymentStatus.SUCCEEDED,
    succeeded_at: datetime | None = None,
    model: str = "fraud-score",
    environment: str = "prod",
) -> Deployment:
    return Deployment(
        pk=pk,
        environment=Environment(pk=1, name=environment, rank=3),
        model=RegisteredModel(pk=1, name=model),
        model_version=ModelVersion(pk=pk, version=version),
        kind=kind,
        status=status,
        started_by_name="ci-pipeline",
        started_at=succeeded_at,
        finished_at=succeeded_at,
        succeeded_at=succeeded_at,
    )


def test_format_duration():
    assert charts.format_duration(None) == "no data"
    assert charts.format_duration(timedelta(0)) == "0 min"
    assert charts.format_duration(timedelta(minutes=42, seconds=50)) == "42 min"
    assert charts.format_duration(timedelta(hours=5)) == "5 h"
    assert charts.format_duration(timedelta(hours=25, minutes=30)) == "1 d 1 h"
    assert charts.format_duration(timedelta(days=3)) == "3 d"


def test_weekly_bars_are_labelled_with_their_counts():
    weeks = [
        WeekCount(NOW - timedelta(days=14), NOW - timedelta(days=7), succeeded=3, failed=0),
        WeekCount(NOW - timedelta(days=7), NOW, succeeded=2, failed=1),
    ]
    tree = parse_svg(charts.deployments_per_week_chart(weeks))
    assert_accessible(tree)
    assert "5 successful deployments and 1 failed or rolled back" in tree.find(f"{SVG}desc").text
    words = texts(tree)
    assert {"deployed", "failed or rolled back", "3", "2", "1"} <= set(words)
    bar_titles = [t for t in titles(tree) if t.startswith("Week from")]
    assert bar_titles[1] == "Week from 13 Nov to 20 Nov: 2 deployed, 1 failed or rolled back"
    # The failure bar is hatched, not only coloured.
    hatched = [r for r in tree.iter(f"{SVG}rect") if r.get("fill") == "url(#weekly-hatch)"]
    assert hatched and tree.find(f".//{SVG}pattern").get("id") == "weekly-hatch"


def test_an_empty_week_list_still_draws_valid_svg():
    tree = parse_svg(charts.deployments_per_week_chart([]))
    assert_accessible(tree)


def test_lead_time_dots_say_what_they_measure():
    points = [
        LeadTime(
            row("1.2", pk=1, succeeded_at=NOW - timedelta(days=3)), NOW - timedelta(days=5), True
        ),
        LeadTime(
            row("1.3", pk=2, succeeded_at=NOW - timedelta(days=1)), NOW - timedelta(days=2), False
        ),
    ]
    tree = parse_svg(charts.lead_time_chart(points, period=PERIOD, median=timedelta(days=1.5)))
    assert_accessible(tree)
    dots = list(tree.iter(f"{SVG}circle"))
    assert len(dots) == 2
    assert dots[0].find(f"{SVG}title").text == (
        "fraud-score 1.2 to prod at 2026-11-17 12:00 UTC: 2 d (commit time from git)"
    )
    assert "from the registration time" in dots[1].find(f"{SVG}title").text
    # Told apart by shape (hollow), not colour alone.
    assert dots[0].get("fill") != dots[1].get("fill") == "#ffffff"
    assert "median 1 d 12 h" in texts(tree)
    assert "2 d" in texts(tree)  # the axis is in days once a lead time passes two days


def test_the_timeline_labels_versions_and_marks_rollbacks():
    v1 = row("1.1", pk=1, succeeded_at=NOW - timedelta(days=20))
    bad = row(
        "1.2", pk=2, status=DeploymentStatus.ROLLED_BACK, succeeded_at=NOW - timedelta(days=10)
    )
    back = row("1.1", pk=3, kind=DeploymentKind.ROLLBACK, succeeded_at=NOW - timedelta(days=4))
    bands = [
        Band(v1, v1.succeeded_at, bad.succeeded_at, still_live=False),
        Band(bad, bad.succeeded_at, back.succeeded_at, still_live=False),
        Band(back, back.succeeded_at, NOW, still_live=True),
    ]
    lane = Lane(v1.environment, v1.model, bands, Measures(period=PERIOD))
    tree = parse_svg(charts.timeline_chart([lane], period=PERIOD))
    assert_accessible(tree)
    words = texts(tree)
    assert "prod · fraud-score" in words
    assert {"1.1", "1.2 ✕", "↩ 1.1"} <= set(words)
    band_titles = [t for t in titles(tree) if " live in " in t]
    assert band_titles[0].startswith("fraud-score 1.1 live in prod from 2026-10-31 12:00 UTC to")
    assert band_titles[1].endswith("later rolled back")
    assert band_titles[2].endswith("until now; rollback by ci-pipeline")
    rolled = [r for r in tree.iter(f"{SVG}rect") if r.get("fill") == "url(#timeline-hatch)"]
    assert len(rolled) == 1
    assert "5 Nov" in words and "20 Nov" in words  # the time axis


def test_a_narrow_band_keeps_its_words_in_the_title():
    short = row("2.0-very-long-version-name", pk=1, succeeded_at=NOW - timedelta(hours=1))
    lane = Lane(
        short.environment,
        short.model,
        [Band(short, short.succeeded_at, NOW, still_live=True)],
        Measures(period=PERIOD),
    )
    tree = parse_svg(charts.timeline_chart([lane], period=PERIOD))
    assert "2.0-very-long-version-name" not in texts(tree)
    assert any("2.0-very-long-version-name" in t for t in titles(tree))


@pytest.mark.parametrize("version", ['1.0<script>alert("x")</script>', "a&b", "it's"])
def test_text_is_escaped(version):
    deployment = row(version, pk=1, succeeded_at=NOW - timedelta(days=25))
    lane = Lane(
        deployment.environment,
        deployment.model,
        [Band(deployment, deployment.succeeded_at, NOW, still_live=True)],
        Measures(period=PERIOD),
    )
    markup = str(charts.timeline_chart([lane], period=PERIOD))
    tree = parse_svg(markup)
    assert not list(tree.iter(f"{SVG}script"))
    assert version in texts(tree)
