"""Delivery metrics against a hand-built history with known answers.

The history is written through the services with explicit times (`now=`): in dev, which needs no
change request, two models over the 30 days before NOW. Commit times of fraud-score come from a
real git repository with fixed committer dates; churn-model has no mirror, so its lead times
start at the versions' registration times, which the test controls.

    fraud-score  v1  committed 10-01 09:00   D0  succeeded 10-10 10:00 (before the period)
                 v2  committed 10-25 09:00   D1  succeeded 10-26 09:00         lead 24 h
                 v3  committed 11-01 09:00   D2  failed    11-02 09:00
                                             D3  succeeded 11-02 12:00         lead 27 h
                 v4  committed 11-10 09:00   D4  succeeded 11-12 09:00         lead 48 h
                                             R1  rollback to v3 at 11-12 10:30
                                             D6  started 11-19 12:00, no result yet
    churn-model  w1  registered 11-14 09:00  D5  succeeded 11-15 09:00         lead 24 h
                 w2  registered 11-16 09:00  D7  failed    11-18 10:00, not restored

Known answers (all models, 30 days to NOW = 11-20 12:00 UTC):
    frequency    4 successes / (30 / 7) weeks
    lead time    24, 24, 27, 48 h: median 25 h 30 min, p90 (nearest rank) 48 h; 1 from registration
    failure rate D2, D4, D7 of D1, D2, D3, D4, D5, D7: 3 / 6
    restore      D2 3 h, D4 1 h 30 min, D7 open: median 2 h 15 min
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from git import Actor, Repo

from registry import services as registry
from registry.builders import build_register, commit_id, repository_mirrored
from releases.delivery_metrics import (
    CommitTime,
    Period,
    commit_times,
    delivery_report,
    median,
    nearest_rank,
)
from releases.models import Deployment, DeploymentKind, DeploymentStatus
from releases.services.deployments import (
    deployment_record_result,
    deployment_rollback,
    deployment_start,
)
from tests.releases.test_charts import SVG, parse_svg

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIRRORED = "https://gitlab.example.com/data-science/fraud-score"
UNMIRRORED = "https://gitlab.example.com/data-science/churn"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def commit_at(repo: Repo, moment: datetime, message: str) -> str:
    path = f"{repo.working_tree_dir}/train.py"
    with open(path, "w") as handle:
        handle.write(f"# {message}\n")
    repo.index.add(["train.py"])
    person = Actor("Ana Quant", "ana@bank.example")
    # An author date a week earlier: lead time runs from the committer date.
    return repo.index.commit(
        message,
        author=person,
        committer=person,
        author_date=moment - timedelta(days=7),
        commit_date=moment,
    ).hexsha


def deploy(environment, version, started: datetime, finished: datetime | None, ok: bool = True):
    deployment, _ = deployment_start(
        actor=None, environment=environment, model_version=version, now=started
    )
    if finished is None:
        return deployment
    return deployment_record_result(
        actor=None,
        deployment=deployment,
        status="succeeded" if ok else "failed",
        now=finished,
    )


@pytest.fixture
def fraud_versions(org, tmp_path):
    repo = Repo.init(tmp_path / "fraud-score", initial_branch="main")
    commits = {
        "v1": commit_at(repo, at(10, 1, 9), "baseline"),
        "v2": commit_at(repo, at(10, 25, 9), "more trees"),
        "v3": commit_at(repo, at(11, 1, 9), "new features"),
        "v4": commit_at(repo, at(11, 10, 9), "recalibrate"),
    }
    repository_mirrored(MIRRORED, str(tmp_path / "fraud-score"))
    return {
        name: build_register("fraud-score", name, repository=MIRRORED, commit_sha=sha)
        for name, sha in commits.items()
    }


@pytest.fixture
def churn_versions(org, django_clock):
    """Registration takes its time from Django's clock: it stops at each registration."""
    versions = {}
    for name, registered in (("w1", at(11, 14, 9)), ("w2", at(11, 16, 9))):
        django_clock.now = registered
        versions[name] = build_register(
            "churn-model", name, repository=UNMIRRORED, commit_sha=commit_id(name)
        )
    return versions


@pytest.fixture
def history(envs, fraud_versions, churn_versions):
    dev, fraud, churn = envs["dev"], fraud_versions, churn_versions
    d = {
        "D0": deploy(dev, fraud["v1"], at(10, 10, 9, 59), at(10, 10, 10)),
        "D1": deploy(dev, fraud["v2"], at(10, 26, 8, 59), at(10, 26, 9)),
        "D2": deploy(dev, fraud["v3"], at(11, 2, 8, 59), at(11, 2, 9), ok=False),
        "D3": deploy(dev, fraud["v3"], at(11, 2, 11), at(11, 2, 12)),
        "D4": deploy(dev, fraud["v4"], at(11, 12, 8), at(11, 12, 9)),
    }
    d["R1"] = deployment_rollback(
        actor=None,
        environment=dev,
        model=fraud["v4"].model,
        reason="Scores drifted after the release.",
        now=at(11, 12, 10, 30),
    )
    d["D5"] = deploy(dev, churn["w1"], at(11, 15, 8), at(11, 15, 9))
    d["D7"] = deploy(dev, churn["w2"], at(11, 18, 9), at(11, 18, 10), ok=False)
    d["D6"] = deploy(dev, fraud["v4"], at(11, 19, 12), None)
    for deployment in d.values():
        deployment.refresh_from_db()
    return d


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def test_the_four_measures_match_the_hand_built_history(envs, history):
    report = delivery_report(now=NOW, days=30, environment=envs["dev"])
    m = report.measures

    assert len(m.succeeded) == 4
    assert m.frequency == pytest.approx(4 / (30 / 7))

    assert sorted(lead.duration for lead in m.lead_times) == [
        hours(24),
        hours(24),
        hours(27),
        hours(48),
    ]
    assert m.lead_time_median == hours(25.5)
    assert m.lead_time_p90 == hours(48)
    assert m.lead_times_from_registration == 1

    assert {d.pk for d in m.finished} == {
        history[n].pk for n in ("D1", "D2", "D3", "D4", "D5", "D7")
    }
    assert {d.pk for d in m.failures} == {history[n].pk for n in ("D2", "D4", "D7")}
    assert m.change_failure_rate == 0.5

    restored = {r.failure.pk: r for r in m.restores}
    assert restored[history["D2"].pk].restored_by.pk == history["D3"].pk
    assert restored[history["D2"].pk].duration == hours(3)
    assert restored[history["D4"].pk].restored_by.pk == history["R1"].pk
    assert restored[history["D4"].pk].duration == hours(1.5)
    assert restored[history["D7"].pk].restored_by is None
    assert m.open_failures == 1
    assert m.time_to_restore_median == timedelta(hours=2, minutes=15)


def test_lead_time_runs_from_the_committer_date_in_git_else_the_registration_time(
    fraud_versions, churn_versions
):
    times = commit_times([fraud_versions["v2"], churn_versions["w1"]])
    assert times[fraud_versions["v2"].pk].at == at(10, 25, 9)
    assert times[fraud_versions["v2"].pk].from_git
    assert times[churn_versions["w1"].pk].at == at(11, 14, 9)
    assert not times[churn_versions["w1"].pk].from_git


def test_each_lane_has_its_own_measures(envs, history):
    lanes = {lane.model.name: lane for lane in delivery_report(now=NOW, days=30).lanes}
    assert set(lanes) == {"fraud-score", "churn-model"}
    fraud, churn = lanes["fraud-score"].measures, lanes["churn-model"].measures
    assert len(fraud.succeeded) == 3
    assert fraud.change_failure_rate == pytest.approx(2 / 4)
    assert fraud.time_to_restore_median == hours(2.25)
    assert churn.change_failure_rate == 0.5
    assert churn.lead_time_median == hours(24)
    assert churn.time_to_restore_median is None
    assert churn.open_failures == 1


def test_filters_select_the_model_and_the_environment(envs, history, fraud_versions):
    churn = history["D5"].model
    only_churn = delivery_report(now=NOW, days=30, environment=envs["dev"], model=churn).measures
    assert [d.pk for d in only_churn.succeeded] == [history["D5"].pk]
    prod = delivery_report(now=NOW, days=30, environment=envs["prod"])
    assert prod.measures.frequency is None
    assert prod.lanes == []


def test_the_period_is_a_parameter(envs, history):
    week = delivery_report(now=NOW, days=7, environment=envs["dev"]).measures
    # Only D5 succeeded, and D5, D7 finished, in the seven days before NOW.
    assert [d.pk for d in week.succeeded] == [history["D5"].pk]
    assert week.change_failure_rate == 0.5
    earlier = delivery_report(now=at(11, 2, 10), days=30, environment=envs["dev"]).measures
    # An hour after D2 failed: D0 and D1 succeeded, D2 failed and is not restored yet.
    assert [d.pk for d in earlier.succeeded] == [history["D0"].pk, history["D1"].pk]
    assert earlier.change_failure_rate == pytest.approx(1 / 3)
    assert earlier.open_failures == 1
    assert earlier.time_to_restore_median is None


def test_the_weekly_counts(envs, history):
    weeks = delivery_report(now=NOW, days=30, environment=envs["dev"]).weeks
    assert [(w.succeeded, w.failed) for w in weeks] == [(0, 0), (1, 0), (1, 1), (1, 1), (1, 1)]
    assert weeks[0].start == NOW - timedelta(days=30)
    assert weeks[-1].end == NOW
    assert all(a.end == b.start for a, b in itertools.pairwise(weeks))


def test_the_timeline_shows_which_version_was_live_when(envs, history):
    report = delivery_report(now=NOW, days=30, environment=envs["dev"])
    lanes = {lane.model.name: lane for lane in report.lanes}
    bands = [
        (b.version.version, b.start, b.end, b.rolled_back, b.still_live)
        for b in lanes["fraud-score"].bands
    ]
    assert bands == [
        ("v1", NOW - timedelta(days=30), at(10, 26, 9), False, False),
        ("v2", at(10, 26, 9), at(11, 2, 12), False, False),
        ("v3", at(11, 2, 12), at(11, 12, 9), False, False),
        ("v4", at(11, 12, 9), at(11, 12, 10, 30), True, False),
        ("v3", at(11, 12, 10, 30), NOW, False, True),
    ]
    assert lanes["fraud-score"].bands[-1].deployment.kind == DeploymentKind.ROLLBACK
    assert [b.version.version for b in lanes["churn-model"].bands] == ["w1"]


def test_no_data_is_not_zero(envs):
    report = delivery_report(now=NOW, days=90, environment=envs["prod"])
    m = report.measures
    assert m.frequency is None
    assert m.lead_time_median is None and m.lead_time_p90 is None
    assert m.change_failure_rate is None
    assert m.time_to_restore_median is None
    assert report.lanes == []
    assert len(report.weeks) == 13


def test_one_deployment(envs, fraud_versions):
    deploy(envs["dev"], fraud_versions["v2"], at(11, 1, 8), at(11, 1, 9))
    m = delivery_report(now=NOW, days=30, environment=envs["dev"]).measures
    assert m.frequency == pytest.approx(7 / 30)
    assert m.lead_time_median == m.lead_time_p90 == hours(7 * 24)
    # A finished deployment that did not fail is a true zero; no failure is "no data".
    assert m.change_failure_rate == 0
    assert m.time_to_restore_median is None
    assert m.open_failures == 0


def test_a_failed_attempt_rolled_back_counts_once(envs, fraud_versions):
    dev = envs["dev"]
    deploy(dev, fraud_versions["v1"], at(11, 1, 8), at(11, 1, 9))
    failed = deploy(dev, fraud_versions["v2"], at(11, 3, 8), at(11, 3, 9), ok=False)
    rollback = deployment_rollback(
        actor=None,
        environment=dev,
        model=failed.model,
        reason="The pipeline left it half done.",
        now=at(11, 3, 9, 20),
    )
    failed.refresh_from_db()
    assert failed.status == DeploymentStatus.ROLLED_BACK
    m = delivery_report(now=NOW, days=30, environment=dev).measures
    assert [d.pk for d in m.failures] == [failed.pk]
    assert m.change_failure_rate == 0.5
    assert m.restores[0].restored_by.pk == rollback.pk
    assert m.time_to_restore_median == timedelta(minutes=20)
    # The rollback delivers nothing new: it is neither a deployment nor a lead time.
    assert len(m.succeeded) == 1


def test_an_attempt_rolled_back_before_it_reported_counts_from_that_moment(envs, fraud_versions):
    dev = envs["dev"]
    deploy(dev, fraud_versions["v1"], at(11, 1, 8), at(11, 1, 9))
    stuck = deploy(dev, fraud_versions["v2"], at(11, 3, 8), None)
    rollback = deployment_rollback(
        actor=None, environment=dev, model=stuck.model, reason="Hung.", now=at(11, 3, 10)
    )
    m = delivery_report(now=NOW, days=30, environment=dev).measures
    assert [r.failure.pk for r in m.restores] == [stuck.pk]
    # Superseded by the rollback at 10:00, restored by it at the same instant.
    assert m.restores[0].restored_by.pk == rollback.pk
    assert m.time_to_restore_median == timedelta(0)


def test_a_commit_dated_after_its_deployment_counts_as_zero(envs, churn_versions, monkeypatch):
    # w1 was registered at 11-14 09:00; deploy it "before" that on a skewed pipeline clock.
    deploy(envs["dev"], churn_versions["w1"], at(11, 14, 7), at(11, 14, 8))
    m = delivery_report(now=NOW, days=30, environment=envs["dev"]).measures
    assert m.lead_time_median == timedelta(0)


def test_median_and_nearest_rank():
    values = [hours(n) for n in (5, 1, 3, 2, 4, 10, 6, 7, 8, 9)]
    assert median(values) == hours(5.5)
    assert median(values[:3]) == hours(3)
    assert nearest_rank(values, 90) == hours(9)
    assert nearest_rank(values[:1], 90) == hours(5)
    assert median([]) is None and nearest_rank([], 90) is None


def test_the_period_includes_both_ends():
    period = Period.ending(NOW, 30)
    assert period.since in period and NOW in period
    assert NOW + timedelta(seconds=1) not in period
    assert period.weeks == pytest.approx(30 / 7)


def _ledger(dev, version, count: int) -> None:
    """`count` deployments in a row straight into the ledger, alternately succeeded and failed
    then rolled back: enough shapes for every measure."""
    start = NOW - timedelta(days=29)
    for index in range(count):
        moment = start + timedelta(hours=6 * index)
        failed = index % 2 == 1
        Deployment.objects.create(
            environment=dev,
            model=version.model,
            model_version=version,
            kind=DeploymentKind.DEPLOY,
            status=DeploymentStatus.FAILED if failed else DeploymentStatus.SUCCEEDED,
            started_by_name="ci-pipeline",
            started_at=moment,
            finished_at=moment + timedelta(minutes=5),
            succeeded_at=None if failed else moment + timedelta(minutes=5),
        )


def test_two_queries_whatever_the_history(envs, fraud_versions):
    _ledger(envs["dev"], fraud_versions["v2"], 50)
    with CaptureQueriesContext(connection) as queries:
        report = delivery_report(now=NOW, days=30)
    assert len(queries) == 2
    assert len(report.measures.finished) == 50


def test_the_page_on_a_controlled_clock(login, auditor, envs, history, django_clock):
    # Signed in at NOW: a session left idle for longer ends (GATEHOUSE_SESSION_IDLE_MINUTES).
    django_clock.now = NOW
    client = login(auditor)
    page = client.get("/releases/metrics/", {"environment": "dev", "days": "30"})
    text = page.content.decode()
    for heading in ("Deployment frequency", "Lead time for changes", "Change failure rate"):
        assert heading in text
    assert 'href="/releases/metrics/"' in text  # the nav link
    assert "0.9 per week" in text
    assert "median 1 d 1 h" in text
    assert "90th percentile 2 d" in text
    assert "50%" in text
    assert "median 2 h 15 min" in text
    assert "1 not yet restored" in text
    assert "1 of 4 lead times starts at the version's registration time" in text
    for chart in page.context["weekly_chart"], page.context["lead_chart"]:
        assert parse_svg(chart).tag == f"{SVG}svg"
    timeline = parse_svg(page.context["timeline_chart"])
    labels = {t.text for t in timeline.iter(f"{SVG}text")}
    assert {"dev · fraud-score", "dev · churn-model"} <= labels


def test_the_page_says_no_data(login, auditor, envs):
    page = login(auditor).get("/releases/metrics/").content.decode()
    assert page.count("no data") >= 4
    assert "No deployment started or finished in this period." in page
    assert "Nothing was deployed here in this period." in page
    # The default environment is the end of the promotion path: delivery to production.
    assert '<option value="prod" selected>' in page


def test_unknown_filters_fall_back_to_the_defaults(login, auditor, envs):
    response = login(auditor).get(
        "/releases/metrics/", {"environment": "nowhere", "model": "nothing", "days": "7"}
    )
    assert response.status_code == 200
    assert response.context["selection"].days == 90
    assert response.context["selection"].environment.name == "prod"
    assert response.context["selection"].model is None


def test_the_page_needs_sign_in(client, envs):
    response = client.get("/releases/metrics/")
    assert response.status_code == 302


@pytest.mark.parametrize("environment", ["dev", "all"])
def test_the_page_queries_do_not_grow_with_the_history(
    login, auditor, envs, fraud_versions, django_clock, environment
):
    client = login(auditor)
    client.get("/releases/metrics/")

    def count() -> int:
        django_clock.now = NOW
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/releases/metrics/", {"environment": environment, "days": "30"})
        assert response.status_code == 200
        return len(queries)

    _ledger(envs["dev"], fraud_versions["v2"], 5)
    few = count()
    _ledger(envs["dev"], fraud_versions["v3"], 45)
    assert count() == few


def test_a_commit_the_mirror_lacks_falls_back_to_the_registration_time(
    fraud_versions, churn_versions, tmp_path
):
    """A mirror configured after registration, that does not hold the version's commit."""
    churn = churn_versions["w1"]
    registry.repository_configure(
        actor=None,
        repository=churn.repository,
        mirror_path=str(tmp_path / "fraud-score"),
        gitlab_url="",
        gitlab_project_id=None,
    )
    churn.repository.refresh_from_db()
    times = commit_times([churn, fraud_versions["v1"]])
    assert times[churn.pk] == CommitTime(at=at(11, 14, 9), from_git=False)
    assert times[fraud_versions["v1"].pk] == CommitTime(at=at(10, 1, 9), from_git=True)
