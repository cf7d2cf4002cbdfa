"""Platform benchmark at bank scale: `make bench` runs it against the PostgreSQL server at
DATABASE_URL, after the audit benchmark.

It creates its own database (`gatehouse_bench_platform`), drops it at the end and never touches
another one. The data set (see `bench/platform_data.py`) grows in three steps, and each figure is
measured at the sizes the goals name, against a baseline from the same run:

1. the gate check and the build registration over HTTP (gunicorn, two workers, on a free port of
   127.0.0.1, loaded by wrk on the same machine) against a no-op DRF endpoint in the same server
   (`bench/urls.py`), and their database queries per request, counted in-process, at 1,000 and at
   1,000,000 deployments;
2. "what was live at T" and filtered audit pages at 10 thousand and at 1 million rows;
3. the change request, environment and dashboard pages at 10 and at 10,000 change requests
   (the change request list by its pages of 50);
4. registering a build without a version (the portal numbers it) at 10 and at 10,000 versions of
   one model;
5. the model inventory page (its first 50 models) and its CSV (every model) at 10 models (right
   after seeding) and at 1,000 (at the end of the run, over the whole history).

The figures replace the platform section of docs/benchmarks.md, each beside the figure it
replaces (read from that section before it is rewritten). BENCH_PLATFORM_SCALE shrinks the big
step for a quick trial run, which prints its report and leaves docs/benchmarks.md alone.
"""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_audit import (  # noqa: E402
    REPORT,
    admin_connection,
    database_url,
    machine,
    write_report,
)

# Another name keeps two runs on one server apart.
BENCH_DB = os.environ.get("BENCH_PLATFORM_DB", "gatehouse_bench_platform")
SCALE = float(os.environ.get("BENCH_PLATFORM_SCALE", "1"))
MODELS = 200
FEW_MODELS = 10
INVENTORY_MODELS = 1_000
SMALL_DEPLOYMENTS = 1_000
MEDIUM_DEPLOYMENTS = 10_000
BIG_DEPLOYMENTS = max(int(1_000_000 * SCALE), 20_000)
FEW_CHANGES = 10
MANY_CHANGES = 10_000
FEW_VERSIONS = 10
MANY_VERSIONS = 10_000
NUMBERED_MODEL = "bench-numbered"
LOAD_SECONDS = int(os.environ.get("BENCH_PLATFORM_LOAD_SECONDS", "15"))
LOAD_CONNECTIONS = 4
# Keep the database for profiling after a run (never in `make bench`).
KEEP = os.environ.get("BENCH_PLATFORM_KEEP") == "1"
GOAL_QUERIES = 10


class Out:
    @staticmethod
    def write(text: str) -> None:
        print(text.rstrip("\n"), flush=True)


def recreate(url: str, *, drop_only: bool = False) -> None:
    connection = admin_connection(url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if not drop_only:
            cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
    connection.close()


def timed(fn, *, runs: int = 15, budget: float = 8.0) -> float:
    """Best seconds of `fn` after one warm-up call, over at most `runs` calls or `budget` seconds:
    other work on a shared machine only ever adds time, so the fastest run is the most
    comparable between the two sizes, measured minutes apart."""
    fn()
    samples = []
    deadline = time.perf_counter() + budget
    while len(samples) < runs and (len(samples) < 3 or time.perf_counter() < deadline):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return min(samples)


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def queries_of(fn, *, statements: bool = False) -> int | tuple[int, int]:
    """Queries `fn` sends; with `statements`, (every statement, those that are not BEGIN,
    COMMIT or savepoints)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    total = len(captured.captured_queries)
    if not statements:
        return total
    control = sum(q["sql"].startswith(TRANSACTION_CONTROL) for q in captured.captured_queries)
    return total, total - control


# -- the data set ---------------------------------------------------------------------------------


def seed(stdout) -> dict:
    """The part built through the services, with the first `FEW_MODELS` models (the rest come
    after the inventory is measured at that size); returns what the measurements need."""
    from audit import demo as audit_demo
    from bench.platform_data import CI_NAME, REPOSITORY
    from organisation.demo import seed_organisation
    from organisation.services import service_account_create
    from portal.models import Scope, Team
    from registry import services as registry
    from releases.demo import seed_environments, seed_freezes

    # The demo's organisation, environments and freeze, without its models and changes, so the
    # small step holds exactly the benchmark's ten change requests.
    seed_organisation()
    audit_demo.seed(open(os.devnull, "w"))  # noqa: SIM115
    seed_freezes(seed_environments())
    account, issued = service_account_create(
        actor=None,
        name=CI_NAME,
        team=Team.objects.get(slug="data-science"),
        scopes=[scope.value for scope in Scope],
    )
    registry.repository_register(actor=None, url=REPOSITORY)
    models_register(0, FEW_MODELS)
    stdout.write(
        f"  seeded the organisation, {FEW_MODELS} models, the service account {account.name}"
    )
    return {"token": issued.secret, "account": account}


def models_register(start: int, stop: int) -> None:
    """Register the benchmark's models `start` to `stop` through the service, as CI does."""
    from bench.platform_data import model_name
    from registry import services as registry

    for index in range(start, stop):
        registry.model_register(actor=None, name=model_name(index), owner_team="data-science")


def approved_change(*, account) -> dict:
    """The question the gate is asked: a build registered by CI, soaked eight days in test (a
    bulk row, since the soak cannot be waited for), with a production change filed and signed
    through the services by the demo personas with their passwords."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bench.platform_data import REPOSITORY, SOAKED_DAYS, copy_rows
    from organisation.demo import DEMO_PASSWORD
    from registry import services as registry
    from registry.builders import commit_id, digest
    from releases.models import Deployment, Environment
    from releases.services import change_requests
    from releases.services.gate import gate_evaluate

    name, version = "bench-model-000", "99.0.0"
    build, _ = registry.model_version_register(
        actor=account,
        model=name,
        version=version,
        repository=REPOSITORY,
        commit_sha=commit_id("gate build"),
        build_id="pipeline-gate",
        artifact_uri=f"s3://bank-ml-models/{name}/{version}/model.pkl",
        artifact_sha256=digest("gate build"),
        env_lock_sha256=digest("uv.lock gate"),
    )
    environments = {e.name: e for e in Environment.objects.all()}
    now = timezone.now()
    soaked = now - timedelta(days=SOAKED_DAYS)
    copy_rows(
        Deployment,
        [
            {
                "environment_id": environments["test"].pk,
                "model_id": build.model_id,
                "model_version_id": build.pk,
                "kind": "deploy",
                "status": "succeeded",
                "started_by_service_id": account.pk,
                "started_by_name": account.name,
                "started_at": soaked - timedelta(minutes=2),
                "finished_at": soaked,
                "succeeded_at": soaked,
                "pipeline_url": "https://gitlab.example.com/bench/models/-/pipelines/soak",
                "health_url": "",
                "detail": "",
                "reason": "",
            }
        ],
    )
    users = {u.username: u for u in get_user_model().objects.all()}
    change = change_requests.change_request_file(
        actor=users["requester"],
        model_version=build,
        environment=environments["prod"],
        title=f"Release {name} {version}",
        justification="Better recall on card-not-present fraud.",
        risk_impact="Scores shift for 2% of transactions.",
        test_evidence="Backtest on October: recall +4 points.",
        rollback_plan="Roll back to the previous version.",
        window_start=now - timedelta(minutes=4),
        window_end=now + timedelta(hours=6),
    )
    for signer in ("peer", "risk", "release", "platform"):
        change.refresh_from_db()
        change_requests.change_request_sign(
            actor=users[signer],
            change_request=change,
            decision="approve",
            comment="",
            password=DEMO_PASSWORD,
            content_digest=change.content_digest,
        )
    answer = gate_evaluate(environment="prod", model=name, version=version)
    if not answer.allowed:
        raise SystemExit(f"the benchmark's change should pass the gate: {answer.codes()}")
    return {
        "question": {"environment": "prod", "model": name, "version": version},
        "change": answer.change_request.number,
    }


# -- in-process measurements ---------------------------------------------------------------------


class Registrations:
    """Unique build registrations, spread over the models like many CI pipelines."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.count = prefix, 0

    def payload(self) -> tuple[str, dict]:
        from bench.platform_data import REPOSITORY, model_name
        from registry.builders import commit_id, digest

        self.count += 1
        key = f"{self.prefix} {self.count}"
        return model_name(self.count % MODELS), {
            "version": f"{self.prefix}.{self.count}",
            "repository": REPOSITORY,
            "commit_sha": commit_id(key),
            "build_id": f"pipeline-{self.prefix}-{self.count}",
            "build_url": f"https://gitlab.example.com/bench/models/-/pipelines/{self.count}",
            "artifact_uri": f"s3://bank-ml-models/{key}/model.pkl",
            "artifact_sha256": digest(key),
            "framework": "lightgbm 4.5",
            "metrics": {"auc": 0.91},
            "datasets": [],
            "env_lock_sha256": digest("uv.lock"),
        }


def api_queries(*, token: str, gate: dict, label: str) -> dict:
    """Database queries of one request of each endpoint, in-process with the same URLconf."""
    from rest_framework.test import APIClient

    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    registrations = Registrations(f"q{label}")

    def check(response, expected=(200, 201)):
        if response.status_code not in expected:
            raise SystemExit(f"{response.status_code} {response.content[:300]!r}")
        return response

    def gate_call():
        response = check(client.post("/api/v1/gate/", gate["question"], format="json"))
        if not response.json()["allowed"]:
            raise SystemExit(f"the gate denied the benchmark's change: {response.json()}")

    def register():
        model, payload = registrations.payload()
        check(client.post(f"/api/v1/models/{model}/versions/", payload, format="json"))

    def noop():
        check(client.post("/api/v1/bench/noop/", {}, format="json"))

    for fn in (gate_call, register, noop):
        fn()
    return {
        "gate": queries_of(gate_call, statements=True),
        "register": queries_of(register, statements=True),
        "noop": queries_of(noop, statements=True),
    }


def history_reads(*, at_fraction: float, reader, gate: dict) -> dict:
    """ "What was live in prod at T" (T inside the loaded history), filtered audit pages and
    the search box's answers (`GET /api/v1/search/?q=`) for each kind of query."""
    from django.db.models import Max
    from django.test import Client

    from registry.models import ModelVersion
    from releases.models import Deployment, Environment
    from releases.selectors.live import live_in_environment

    prod = Environment.objects.get(name="prod")
    first, last = (
        Deployment.objects.filter(pipeline_url="").order_by("started_at").first().started_at,
        Deployment.objects.filter(pipeline_url="").order_by("-started_at").first().started_at,
    )
    at = first + (last - first) * at_fraction
    client = Client()
    client.force_login(reader)
    middle = Deployment.objects.filter(pipeline_url="").aggregate(Max("pk"))["pk__max"] // 2
    audit_queries = {
        "environment and action": "environment=prod&action=deployment.failed",
        "action": "action=model_version.registered",
        "object": f"object_type=releases.deployment&object_id={middle}",
    }

    def live():
        rows = list(live_in_environment(environment=prod, at=at))
        if not rows:
            raise SystemExit("nothing was live in prod at the benchmark's moment")
        return rows

    def live_api():
        response = client.get(
            f"/api/v1/environments/prod/live/?{urlencode({'at': at.isoformat()})}"
        )
        if response.status_code != 200:
            raise SystemExit(f"live API: {response.status_code} {response.content[:300]!r}")

    results = {
        "live, selector": (timed(live), queries_of(live)),
        "live, API": (timed(live_api), queries_of(live_api)),
    }
    for label, query in audit_queries.items():

        def page(query=query):
            response = client.get(f"/api/v1/audit/events/?{query}")
            if response.status_code != 200 or not response.json().get("results"):
                raise SystemExit(f"audit API {query}: {response.status_code}")

        results[f"audit page, {label}"] = (timed(page), queries_of(page))
    question = gate["question"]
    build = ModelVersion.objects.get(model__name=question["model"], version=question["version"])
    searches = {
        "commit prefix": build.commit_sha[:7],
        "digest prefix": build.artifact_sha256[:10],
        "change request": gate["change"],
        "model": question["model"],
        "person": "requester",
    }
    for label, q in searches.items():

        def search(q=q):
            response = client.get("/api/v1/search/", {"q": q})
            found = response.json() if response.status_code == 200 else {}
            if not any(
                found.get(kind)
                for kind in ("commits", "artifacts", "change_requests", "models", "people")
            ):
                raise SystemExit(f"search {q}: {response.status_code} {response.content[:300]!r}")

        results[f"search, {label}"] = (timed(search), queries_of(search))
    return results


def evidence_pack_reads(*, change: str) -> dict:
    """The evidence pack of the gate's change request (its build has the history's events) as
    the API builds it, after the hourly checkpoint: the first build, which computes the stored
    chunk roots, and the best of later ones; with the size of its proofs."""
    import io
    import json
    import zipfile

    from audit.models import AuditMerkleChunk
    from audit.services import audit_checkpoint_create
    from releases.evidence_pack import evidence_pack_build
    from releases.models import ChangeRequest

    audit_checkpoint_create(actor=None)
    AuditMerkleChunk.objects.all().delete()
    change_request = ChangeRequest.objects.get(pk=int(change.removeprefix("CR-")))

    def build():
        return evidence_pack_build(change_request=change_request)

    mark = time.perf_counter()
    queries_first = queries_of(build)
    first = time.perf_counter() - mark
    best = timed(build, runs=7)
    _, pack = build()
    with zipfile.ZipFile(io.BytesIO(pack)) as files:
        events = [json.loads(line) for line in files.read("events.jsonl").splitlines()]
        size = json.loads(files.read("head.json"))["size"]
    proofs = [len(event["proof"]) for event in events]
    return {
        "times": {
            "evidence pack, first build (computes the chunk roots)": (first, queries_first),
            "evidence pack, built again": (best, queries_of(build)),
        },
        "events": len(events),
        "trail": size,
        "proof_nodes": max(proofs) if proofs else 0,
        "pack_bytes": len(pack),
    }


def inventory_reads(*, user) -> dict:
    """The model inventory page and its CSV download, unfiltered (the page's first 50 models, the
    CSV every model), each model's entry filled first (`bench.platform_data.inventory_fill`)."""
    from bench.platform_data import inventory_fill

    inventory_fill()
    from django.test import Client

    client = Client()
    client.force_login(user)
    results = {}
    for label, url in (
        ("inventory page", "/registry/inventory/"),
        ("inventory CSV", "/registry/inventory.csv"),
    ):

        def get(url=url):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")

        results[label] = (timed(get, runs=11), queries_of(get))
    return results


def models_grow_to(total: int) -> int:
    """More registered models (bulk rows, as the inventory reads them): for the inventory's
    figures at its larger size."""
    from portal.models import Team
    from registry.models import RegisteredModel

    team = Team.objects.get(slug="data-science")
    have = RegisteredModel.objects.count()
    RegisteredModel.objects.bulk_create(
        RegisteredModel(name=f"inventory-{index:05d}", owner_team=team, risk_tier=1 + index % 3)
        for index in range(have, total)
    )
    return RegisteredModel.objects.count()


def page_reads(*, user, change: str) -> dict:
    """The pages, and the change request list by its pages: the first, one further on (the
    middle of the history; at ten changes, the page after the newest five), and the first page
    filtered by team (requests filed by, waiting for or signed by Model Risk); the change
    calendar's week and month around the changes in flight (their windows open in two days),
    unfiltered and for Model Risk, and the CAB's agenda of the coming week."""
    from django.test import Client
    from django.utils import timezone

    from releases.models import ChangeRequest

    client = Client()
    client.force_login(user)
    ids = list(ChangeRequest.objects.order_by("-id").values_list("id", flat=True))
    further = ids[len(ids) // 2] if len(ids) > 100 else ids[4]
    in_flight = (timezone.localdate() + timedelta(days=2)).isoformat()
    pages = {
        "dashboard": "/",
        "change requests waiting for me": "/releases/waiting/",
        "change request list, first page (50 rows)": "/releases/change-requests/",
        "change request list, a page further on": (
            f"/releases/change-requests/?older_than={further}"
        ),
        "change request list, team filter": "/releases/change-requests/?team=model-risk",
        "change request list, in approval": "/releases/change-requests/?state=in_approval",
        "change calendar, week": f"/releases/calendar/?date={in_flight}",
        "change calendar, month": f"/releases/calendar/?view=month&date={in_flight}",
        "change calendar, week, team filter": (
            f"/releases/calendar/?date={in_flight}&team=model-risk"
        ),
        "CAB agenda (a week of production changes)": "/releases/cab/",
        "change request page": f"/releases/change-requests/{change}/",
        "environment list": "/releases/environments/",
        "environment page (prod)": "/releases/environments/prod/",
    }
    results = {}
    for label, url in pages.items():

        def get(url=url):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")

        results[label] = (timed(get, runs=11), queries_of(get))
    return results


def numbering(*, token: str) -> dict:
    """A build registered without a version through the API (the portal numbers it: one more
    version of `NUMBERED_MODEL` per call), and, for reference, the read the numbering made before
    issue 13: every version number of the model."""
    from rest_framework.test import APIClient

    from bench.platform_data import REPOSITORY
    from registry.builders import commit_id, digest
    from registry.models import RegisteredModel

    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    model = RegisteredModel.objects.get(name=NUMBERED_MODEL)
    before = model.versions.count()
    builds = itertools.count(before)

    def register():
        key = f"{NUMBERED_MODEL} api build {next(builds)}"
        payload = {
            "repository": REPOSITORY,
            "commit_sha": commit_id(key),
            "build_id": f"api-{commit_id(key)[:12]}",
            "artifact_uri": f"s3://bank-ml-models/{key}/model.pkl",
            "artifact_sha256": digest(key),
            "datasets": [],
        }
        response = client.post(f"/api/v1/models/{NUMBERED_MODEL}/versions/", payload, format="json")
        if response.status_code != 201:
            raise SystemExit(f"numbering: {response.status_code} {response.content[:300]!r}")

    def every_version_number():
        return set(model.versions.values_list("version", flat=True))

    return {
        "versions": before,
        "registration without a version": (timed(register), queries_of(register)),
        "every version number of the model (the read before)": (
            timed(every_version_number),
            queries_of(every_version_number),
        ),
    }


# -- over HTTP ----------------------------------------------------------------------------------

LUA = """
local body_fixed = %(body)s
local prefix = "%(prefix)s"
local counter = 0
local thread_id = 0
local models = %(models)d
local id_source = 0
function setup(thread)
  id_source = id_source + 1
  thread:set("thread_id", id_source)
end
local function hex(n, width)
  return string.format("%%0" .. width .. "x", n)
end
request = function()
  if body_fixed then
    return wrk.format("POST", nil, nil, body_fixed)
  end
  counter = counter + 1
  local key = thread_id * 100000000 + counter
  local model = string.format("bench-model-%%03d", counter %% models)
  local body = '{"version":"' .. prefix .. '.' .. thread_id .. '.' .. counter .. '",'
    .. '"repository":"https://gitlab.example.com/bench/models",'
    .. '"commit_sha":"' .. hex(thread_id, 8) .. hex(key, 32) .. '",'
    .. '"build_id":"pipeline-' .. prefix .. '-' .. key .. '",'
    .. '"artifact_uri":"s3://bank-ml-models/' .. prefix .. '/' .. key .. '/model.pkl",'
    .. '"artifact_sha256":"' .. hex(thread_id, 32) .. hex(key, 32) .. '",'
    .. '"framework":"lightgbm 4.5","metrics":{"auc":0.91},"datasets":[]}'
  return wrk.format("POST", "/api/v1/models/" .. model .. "/versions/", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format(
    '\\nRESULT {"requests": %%d, "duration_us": %%d, "status_errors": %%d, '
    .. '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workdir: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "0",
        # Persistent connections, as production runs (docs/deploy.md).
        "DATABASE_CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "portal.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(Path(workdir) / "gunicorn.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn did not start; see gunicorn.log") from None
            time.sleep(0.3)
    raise SystemExit("gunicorn did not listen within a minute")


def wrk(*, url: str, token: str, body: dict | None, prefix: str, workdir: str) -> dict:
    script = Path(workdir) / f"{prefix}.lua"
    fixed = json.dumps(json.dumps(body)) if body is not None else "nil"
    script.write_text(
        "wrk.method = 'POST'\n"
        f"wrk.headers['Authorization'] = 'Bearer {token}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        + LUA
        % {"body": fixed, "prefix": prefix, "models": MODELS}
    )
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{LOAD_CONNECTIONS}",
            f"-d{LOAD_SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(output.split("RESULT ", 1)[1])
    if result["status_errors"] or result["socket_errors"]:
        raise SystemExit(f"wrk saw errors on {url}: {result}")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def http_load(*, token: str, gate: dict, workdir: str) -> dict:
    port = free_port()
    server = start_server(port, workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        runs = {}
        common = {"token": token, "workdir": workdir}
        # A short warm-up, then the baseline before and after the endpoints it is compared with.
        wrk(url=f"{base}/api/v1/bench/noop/", body={}, prefix="warm", **common)
        runs["noop"] = wrk(url=f"{base}/api/v1/bench/noop/", body={}, prefix="noop1", **common)
        runs["gate"] = wrk(
            url=f"{base}/api/v1/gate/", body=gate["question"], prefix="gate", **common
        )
        runs["register"] = wrk(url=f"{base}/api/v1/models/", body=None, prefix="reg", **common)
        runs["noop2"] = wrk(url=f"{base}/api/v1/bench/noop/", body={}, prefix="noop2", **common)
        for label, run in runs.items():
            print(
                f"  {label}: {run['rps']:,.0f}/s, p50 {run['p50_us'] / 1000:.1f} ms, "
                f"p99 {run['p99_us'] / 1000:.1f} ms",
                flush=True,
            )
        return runs
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


# -- the report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# Pages that show everything in a period, whose goal is the same queries at both sizes.
SHOWS_THE_PERIOD = ("change calendar", "CAB agenda")
# A row renamed since the previous run, so its figures are still found beside the new ones.
RENAMED = {"change request list, first page (50 rows)": "change request list (up to 200 rows)"}


def previous_run() -> tuple[str, dict[str, list[str]]]:
    """The platform section docs/benchmarks.md holds before this run: when it ran, and the
    cells of its table rows by their first cell (the first table naming a row wins)."""
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    start, end = "<!-- platform:start -->", "<!-- platform:end -->"
    if start not in text or end not in text:
        return "", {}
    section = text.split(start, 1)[1].split(end, 1)[0]
    when = re.search(r"^Run (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", section, re.MULTILINE)
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| "):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0], cells)
    return (when.group(1) if when else ""), rows


def before(rows: dict[str, list[str]], label: str, shown) -> str:
    """The previous run's figure for `label`, as `shown` picks it from that row's cells."""
    cells = rows.get(label) or rows.get(RENAMED.get(label, ""))
    return shown(cells) if cells else "not measured"


def report(figures: dict) -> str:
    http, small_q, big_q = figures["http"], figures["queries_small"], figures["queries_big"]
    noop_rps = (http["noop"]["rps"] + http["noop2"]["rps"]) / 2
    noop_p50 = (http["noop"]["p50_us"] + http["noop2"]["p50_us"]) / 2
    noop_p99 = (http["noop"]["p99_us"] + http["noop2"]["p99_us"]) / 2
    sizes = figures["sizes"]
    when, old = figures["previous"]
    previous = f"previous run ({when})" if when else "previous run"
    lines = [
        "## Platform at bank scale (`bench/bench_platform.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {figures['minutes']:.1f} "
        f"minutes in all (loading {figures['load_minutes']:.1f}), database `{BENCH_DB}` created "
        f"and dropped by the run. Load average {figures['load'][0]:.1f} at the start and "
        f"{figures['load'][1]:.1f} at the end. Data set at its largest: "
        f"{sizes['models']:,} registered models, {sizes['versions']:,} model versions, "
        f"{sizes['deployments']:,} deployments, {sizes['events']:,} audit events (the chain "
        f"verified: {sizes['verified']}), {sizes['changes']:,} change requests with "
        f"{sizes['sign_offs']:,} sign-offs. The last column of each table holds the figure of "
        f"the {previous} that this one replaces.",
    ]
    if SCALE != 1:
        lines += ["", f"**Trial run at scale {SCALE}: not the figures of the issue.**"]
    lines += [
        "",
        "### 1. Gate check and build registration over HTTP",
        "",
        f"gunicorn with two sync workers on 127.0.0.1 (`bench.settings`: the product plus a no-op "
        f'DRF endpoint that authenticates the bearer token and returns `{{"ok": true}}`), '
        f"persistent database connections; wrk with {LOAD_CONNECTIONS} connections for "
        f"{LOAD_SECONDS} s per endpoint on the same two CPUs, at {sizes['deployments']:,} "
        "deployments. The no-op ran before and after the others; its figures are the mean of "
        "both runs. Every gate check records its decision and an audit event; every "
        "registration is a new build of one of the 200 models, with its version named.",
        "",
        f"| endpoint | requests/s | ratio to no-op | p50 | p99 | goal | {previous} |",
        "|---|---|---|---|---|---|---|",
        f"| no-op (baseline) | {noop_rps:,.0f} | 100% | {noop_p50 / 1000:.1f} ms "
        f"| {noop_p99 / 1000:.1f} ms | — | "
        + before(old, "no-op (baseline)", lambda c: f"{c[1]}/s, p50 {c[3]}")
        + " |",
    ]
    for key, label, goal in (
        ("gate", "`POST /api/v1/gate/` (allowed)", 0.5),
        ("register", "`POST /api/v1/models/{name}/versions/`", None),
    ):
        run = http[key]
        ratio = run["rps"] / noop_rps
        lines.append(
            f"| {label} | {run['rps']:,.0f} | {ratio:.0%} | {run['p50_us'] / 1000:.1f} ms "
            f"({run['p50_us'] / noop_p50:.1f} times) | {run['p99_us'] / 1000:.1f} ms "
            f"({run['p99_us'] / noop_p99:.1f} times) | "
            + (f"≥ 50% of no-op: {verdict(ratio >= goal)}" if goal else "—")
            + " | "
            + before(old, label, lambda c: f"{c[1]}/s ({c[2]}), p50 {c[3]}")
            + " |"
        )
    lines += [
        "",
        "Database queries per request (`CaptureQueriesContext`, in-process, same URLconf), as "
        "SQL queries and, after the slash, every statement including BEGIN and COMMIT:",
        "",
        f"| endpoint | at {SMALL_DEPLOYMENTS:,} deployments | at {sizes['deployments']:,} "
        f"deployments | goal | {previous}, at the larger size |",
        "|---|---|---|---|---|",
    ]
    for key, label in (("noop", "no-op"), ("gate", "gate check"), ("register", "registration")):
        goal = "—"
        if key == "gate":
            ok = big_q["gate"][1] <= GOAL_QUERIES and big_q["gate"] == small_q["gate"]
            goal = f"≤ {GOAL_QUERIES} SQL queries and the same: {verdict(ok)}"
        lines.append(
            f"| {label} | {small_q[key][1]} / {small_q[key][0]} "
            f"| {big_q[key][1]} / {big_q[key][0]} | {goal} | "
            + before(old, label, lambda c: c[2])
            + " |"
        )

    def compared(table: dict, small_key: str, big_key: str, goal) -> list[str]:
        rows = []
        for label, (small, small_n) in table[small_key].items():
            big, big_n = table[big_key][label]
            ratio = big / small
            rows.append(
                f"| {label} | {ms(small)} | {ms(big)} | {ratio:.2f} times | {small_n} / {big_n} "
                f"| {goal(label, ratio, small_n, big_n)} | "
                + before(old, label, lambda c: f"{c[2]}, {c[3]}, {c[4]} queries")
                + " |"
            )
        return rows

    lines += [
        "",
        "### 2. History at 10 thousand and at 1 million rows",
        "",
        f'"What was live in prod at T" (`releases.selectors.live.live_in_environment`, with the '
        f"provenance the pages show, and the live API with `?at=`), T in the middle of the "
        f"history, at {MEDIUM_DEPLOYMENTS:,} and {sizes['deployments']:,} deployments; audit "
        f"pages through `GET /api/v1/audit/events/` (50 events, newest first) at "
        f"{figures['events_medium']:,} and {sizes['events']:,} events; the search box through "
        f"`GET /api/v1/search/?q=` for the gate's build, change request and model and for a "
        f"person (goal: the same queries at both sizes). Best of up to 15 runs in-process.",
        "",
        f"| read | small | large | ratio | queries (small / large) | goal ≤ 2 times "
        f"| {previous}: large, ratio |",
        "|---|---|---|---|---|---|---|",
        *compared(
            figures,
            "history_small",
            "history_big",
            # The search's goal is the number of queries; its time follows the hits shown.
            lambda label, ratio, small, big: verdict(
                small == big if label.startswith("search") else ratio <= 2
            ),
        ),
        "",
        f"### 3. Pages at {FEW_CHANGES} and at {sizes['changes']:,} change requests",
        "",
        f"Signed in as `release` (an approver of Release Management), Django's test client "
        f"in-process, at {sizes['deployments']:,} deployments both times. Best of up to 11 "
        f"runs. The change request list shows 50 rows a page, newest first, with next and "
        f"previous links that keep the filters; a page further on is read by keyset (the rows "
        f"older than one id: at {sizes['changes']:,} changes, from the middle of the history; "
        f"at {FEW_CHANGES}, after the newest five).",
        "",
        f"| page | {FEW_CHANGES} changes | {sizes['changes']:,} changes | ratio | queries "
        f"(few / many) | goal: same queries, ≤ 2 times | {previous}: many, ratio |",
        "|---|---|---|---|---|---|---|",
        *compared(
            figures,
            "pages_few",
            "pages_many",
            lambda label, ratio, few, many: (
                verdict(few == many)
                if label.startswith(SHOWS_THE_PERIOD)
                else verdict(ratio <= 2 and few == many)
            ),
        ),
        "",
        "The change calendar and the CAB's agenda show every entry of their period (at "
        f"{FEW_CHANGES} changes, the ten in flight; at {sizes['changes']:,}, also the history's "
        "windows of those days), so their time follows what they show; their goal is the same "
        "queries.",
        "",
        f"### 4. A build registered without a version, at {FEW_VERSIONS} and at "
        f"{figures['numbering_many']['versions']:,} versions of one model",
        "",
        f"`POST /api/v1/models/{NUMBERED_MODEL}/versions/` without `version`, in-process "
        f"through the API with the CI token, best of up to 15 runs: the portal numbers the "
        f"build after the model's highest plain-number version, read from the model's row. "
        f"Each call registers one more build (the first size grows from "
        f"{figures['numbering_few']['versions']} during its runs). For reference, the read "
        f"the numbering made before (every version number of the model), timed alone.",
        "",
        f"| measure | {FEW_VERSIONS} versions | {figures['numbering_many']['versions']:,} "
        f"versions | ratio | queries (few / many) | goal: same queries, ≤ 1.25 times "
        f"| {previous}: many, ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    numbered = {
        "few": {k: v for k, v in figures["numbering_few"].items() if k != "versions"},
        "many": {k: v for k, v in figures["numbering_many"].items() if k != "versions"},
    }
    lines += compared(
        numbered,
        "few",
        "many",
        lambda label, ratio, few, many: (
            verdict(ratio <= 1.25 and few == many) if label.startswith("registration") else "—"
        ),
    )
    small_pack, big_pack = figures["pack_small"], figures["pack_big"]
    lines += [
        "",
        f"### 5. The evidence pack at {small_pack['trail']:,} and at {big_pack['trail']:,} "
        "audit events",
        "",
        f"`releases.evidence_pack.evidence_pack_build` for the gate's change request "
        f"({big_pack['events']} events about it, its build and its deployments), in-process "
        "right after the hourly checkpoint (so the trail is verified from there). The first "
        "build computes the stored roots of the 4,096-event chunks; later ones read them. "
        f"Largest inclusion proof: {small_pack['proof_nodes']} nodes at the smaller size, "
        f"{big_pack['proof_nodes']} at the larger (log2 of the trail); the pack weighs "
        f"{small_pack['pack_bytes'] / 1024:.0f} and {big_pack['pack_bytes'] / 1024:.0f} KiB.",
        "",
        f"| build | {small_pack['trail']:,} events | {big_pack['trail']:,} events | ratio "
        f"| queries (small / large) | goal: under a second | {previous}: large, ratio |",
        "|---|---|---|---|---|---|---|",
        *compared(
            {"small": small_pack["times"], "big": big_pack["times"]},
            "small",
            "big",
            lambda label, ratio, small, big: (
                verdict(figures["pack_big"]["times"][label][0] < 1) if "again" in label else "—"
            ),
        ),
    ]
    few_models, many_models = figures["inventory_counts"]
    lines += [
        "",
        f"### 6. The model inventory at {few_models:,} and at {many_models:,} models",
        "",
        "`/registry/inventory/` and its CSV download, unfiltered, signed in as "
        f"`risk` (Model Risk), in-process, best of up to 11 runs: at {few_models:,} models "
        "right after seeding (the gate's build live in test, no history yet), and at "
        f"{many_models:,} at the end of the run, over the whole history (the last "
        f"{many_models - MODELS - 1:,} are bulk model rows without builds). Every entry is filled "
        "like the demo's (`inventory_fill`: owners, tier and rationale, an upstream model and "
        "dataset); one model in ten is in production with its validation lapsed, so the page "
        "reads what runs under it, at both sizes. The page shows 50 models at a time, by risk "
        "tier then name, with next and previous links read by keyset, and counts every model "
        "the filters select (one COUNT query); its first page is measured. The CSV lists every "
        "model, so its time follows the models; the goal is the same number of queries.",
        "",
        f"| read | {few_models:,} models | {many_models:,} models | ratio | queries (few / many) "
        f"| goal: same queries | {previous}: many, ratio |",
        "|---|---|---|---|---|---|---|",
        *compared(
            figures,
            "inventory_few",
            "inventory_many",
            lambda label, ratio, few, many: verdict(few == many),
        ),
    ]
    lines += ["", figures["notes"]]
    return "\n".join(lines)


NOTES_FILE = ROOT / "bench" / "platform_notes.md"


# -- the run ---------------------------------------------------------------------------------------


def sizes() -> dict:
    from audit.models import AuditEvent
    from registry.models import ModelVersion, RegisteredModel
    from releases.models import ChangeRequest, Deployment, SignOff

    return {
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "deployments": Deployment.objects.count(),
        "events": AuditEvent.objects.count(),
        "changes": ChangeRequest.objects.count(),
        "sign_offs": SignOff.objects.count(),
    }


def analyze() -> None:
    """Statistics for the planner, and the load's pages written out now (CHECKPOINT) rather than
    by the checkpointer while a measurement runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")


def main() -> None:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench_platform needs DATABASE_URL pointing at a PostgreSQL server")
    recreate(url)
    workdir = tempfile.mkdtemp(prefix="gatehouse-bench-platform-")
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DB)
    os.environ["GATEHOUSE_VAR_DIR"] = workdir
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone

    from audit.services import audit_verify
    from bench.platform_data import (
        Loader,
        Timeline,
        indexes_deferred,
        load_change_requests,
        load_numbered_versions,
    )
    from registry.services import model_register
    from releases.models import ChangeRequest

    out = Out()
    figures: dict = {}
    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0].split()[0]
        load_seconds = 0.0
        mark = time.perf_counter()
        seeded = seed(out)
        gate = approved_change(account=seeded["account"])
        users = {u.username: u for u in get_user_model().objects.all()}
        load_seconds += time.perf_counter() - mark
        figures["inventory_few"] = inventory_reads(user=users["risk"])
        few_models = sizes()["models"]
        print(f"inventory at {few_models}: {figures['inventory_few']}", flush=True)
        mark = time.perf_counter()
        models_register(FEW_MODELS, MODELS)
        timeline = Timeline(versions=BIG_DEPLOYMENTS // 10, now=timezone.now())
        loader = Loader(timeline=timeline, stdout=out)
        loader.grow_to(deployments=SMALL_DEPLOYMENTS)
        analyze()
        load_seconds += time.perf_counter() - mark
        figures["queries_small"] = api_queries(token=seeded["token"], gate=gate, label="small")
        print(f"queries at {SMALL_DEPLOYMENTS:,}: {figures['queries_small']}", flush=True)

        mark = time.perf_counter()
        loader.grow_to(deployments=MEDIUM_DEPLOYMENTS)
        analyze()
        load_seconds += time.perf_counter() - mark
        figures["events_medium"] = sizes()["events"]
        figures["pack_small"] = evidence_pack_reads(change=gate["change"])
        print(f"evidence pack at {figures['events_medium']:,} events: {figures['pack_small']}")
        figures["history_small"] = history_reads(
            at_fraction=0.5, reader=users["auditor"], gate=gate
        )
        print(f"history at {MEDIUM_DEPLOYMENTS:,}: {figures['history_small']}", flush=True)

        mark = time.perf_counter()
        with indexes_deferred():
            loader.grow_to(deployments=BIG_DEPLOYMENTS)
        analyze()
        load_seconds += time.perf_counter() - mark
        print(f"grown in {load_seconds / 60:.1f} minutes so far: {sizes()}", flush=True)
        figures["queries_big"] = api_queries(token=seeded["token"], gate=gate, label="big")
        print(f"queries at {BIG_DEPLOYMENTS:,}: {figures['queries_big']}", flush=True)
        figures["history_big"] = history_reads(at_fraction=0.5, reader=users["auditor"], gate=gate)
        print(f"history at {BIG_DEPLOYMENTS:,}: {figures['history_big']}", flush=True)
        figures["pack_big"] = evidence_pack_reads(change=gate["change"])
        print(f"evidence pack at {sizes()['events']:,} events: {figures['pack_big']}")

        mark = time.perf_counter()
        load_change_requests(count=FEW_CHANGES - ChangeRequest.objects.count(), stdout=out)
        analyze()
        load_seconds += time.perf_counter() - mark
        figures["pages_few"] = page_reads(user=users["release"], change=gate["change"])
        print(f"pages at {FEW_CHANGES}: {figures['pages_few']}", flush=True)
        mark = time.perf_counter()
        load_change_requests(count=MANY_CHANGES - ChangeRequest.objects.count(), stdout=out)
        analyze()
        load_seconds += time.perf_counter() - mark
        figures["pages_many"] = page_reads(user=users["release"], change=gate["change"])
        print(f"pages at {MANY_CHANGES:,}: {figures['pages_many']}", flush=True)

        mark = time.perf_counter()
        model_register(actor=None, name=NUMBERED_MODEL, owner_team="data-science")
        load_numbered_versions(model_name=NUMBERED_MODEL, upto=FEW_VERSIONS, stdout=out)
        load_seconds += time.perf_counter() - mark
        figures["numbering_few"] = numbering(token=seeded["token"])
        print(f"numbering at {FEW_VERSIONS}: {figures['numbering_few']}", flush=True)
        mark = time.perf_counter()
        load_numbered_versions(model_name=NUMBERED_MODEL, upto=MANY_VERSIONS, stdout=out)
        analyze()
        load_seconds += time.perf_counter() - mark
        figures["numbering_many"] = numbering(token=seeded["token"])
        print(f"numbering at {MANY_VERSIONS:,}: {figures['numbering_many']}", flush=True)

        figures["inventory_counts"] = (few_models, models_grow_to(INVENTORY_MODELS))
        analyze()
        figures["inventory_many"] = inventory_reads(user=users["risk"])
        print(f"inventory at {INVENTORY_MODELS:,}: {figures['inventory_many']}", flush=True)

        figures["http"] = http_load(token=seeded["token"], gate=gate, workdir=workdir)
        run, _ = audit_verify(actor=None)
        figures["sizes"] = {**sizes(), "verified": "yes" if run.ok else f"no: {run.problem}"}
        if not run.ok:
            raise SystemExit(f"the benchmark chain does not verify: {run.problem}")
    finally:
        connections.close_all()
        if not KEEP:
            recreate(url, drop_only=True)
            shutil.rmtree(workdir, ignore_errors=True)
    figures["minutes"] = (time.perf_counter() - started) / 60
    figures["load_minutes"] = load_seconds / 60
    figures["load"] = (load_before, os.getloadavg()[0])
    figures["notes"] = NOTES_FILE.read_text(encoding="utf-8").strip()
    figures["previous"] = previous_run()
    section = report(figures)
    if SCALE == 1:
        write_report(machine(server_version), section, area="platform")
    print(section)


if __name__ == "__main__":
    main()
