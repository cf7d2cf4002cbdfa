#!/usr/bin/env python3
"""Gatehouse CI helper: register datasets and builds, ask the deployment gate, report deployments.

Standard library only, so any CI image with Python 3.9+ can run it. Download it from the portal
(/registry/ci/gatehouse_ci.py, with any service token; its sha256 is at .../gatehouse_ci.py.sha256)
or copy it from the Gatehouse repository (registry/ci/).

It reads what the CI system already knows (commit, ref, pipeline id and URL, project URL) from the
usual variables of GitLab CI, GitHub Actions and Jenkins; options on the command line win.

    GATEHOUSE_URL    the portal, e.g. https://gatehouse.bank.example
    GATEHOUSE_TOKEN  a service account token (registry:write, gate:read, deployments:write;
                     runs:write alone for a batch job's run-start)

Examples:
    gatehouse_ci.py dataset --name loans --version 2026-11-01 --uri s3://data/loans.parquet \
        --file data/loans.parquet --rows 120000
    gatehouse_ci.py build --model credit-scoring --artifact dist/model.pkl \
        --artifact-uri s3://models/credit-scoring/model.pkl --dataset loans@2026-11-01 \
        --env-lock uv.lock --metrics @metrics.json
    gatehouse_ci.py gate --environment prod --model credit-scoring --artifact dist/model.pkl
    ID=$(gatehouse_ci.py --field id deploy-start --environment prod --model credit-scoring \
        --version 12)
    gatehouse_ci.py deploy-result --deployment "$ID" --status succeeded
    gatehouse_ci.py run-start --environment prod --model credit-scoring \
        --artifact model.pkl --job-id "$YARN_APP_ID"        # exit 1: do not score

It fails closed: the token goes only to GATEHOUSE_URL, over https (plain http only with
--insecure, for a test portal); a redirect is refused, never followed, and a success that is not
the portal's JSON (a proxy's sign-in page, say) is refused.

Exit status: 0 done (or allowed), 1 refused by the portal (gate denial, conflict, validation),
2 a usage, configuration or connection error: bad options, the portal could not be reached, or an
answer that is not the portal's (a redirect, not JSON).
"""

import argparse
import datetime
import hashlib
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

VERSION = "3"
USER_AGENT = f"gatehouse-ci/{VERSION}"
RETRIES = 3
TIMEOUT_SECONDS = 30
# datetime.UTC is Python 3.11+; the helper runs on 3.9.
UTC = datetime.timezone.utc  # noqa: UP017


class Refused(Exception):
    """The portal answered and said no."""


class Unreachable(Exception):
    """The portal did not answer after the retries."""


class Untrusted(Exception):
    """Something answered that is not the portal as configured: nothing it says is believed."""


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a redirect with the request's headers, Authorization included: whoever
    the Location names would get the token. Refusing here turns every 3xx into an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def portal_url(url, insecure=False):
    """The configured portal, checked before any token leaves: https, or http when asked."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Untrusted(f"GATEHOUSE_URL must be an https:// URL, not {url!r}.")
    if parts.scheme == "http" and not insecure:
        raise Untrusted(
            f"GATEHOUSE_URL is {url!r}: over http:// the token would cross the network in "
            "clear. Use https://, or pass --insecure for a test portal."
        )
    return url.rstrip("/")


def ci_context(environ=None):
    """Commit, ref, build id and URL, repository URL from the CI system's variables."""
    env = os.environ if environ is None else environ
    if env.get("CI_COMMIT_SHA"):
        return {
            "system": "gitlab",
            "commit_sha": env.get("CI_COMMIT_SHA", ""),
            "ref": env.get("CI_COMMIT_REF_NAME", ""),
            "build_id": env.get("CI_PIPELINE_ID", ""),
            "build_url": env.get("CI_PIPELINE_URL", ""),
            "repository": env.get("CI_PROJECT_URL", ""),
        }
    if env.get("GITHUB_SHA"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = f"{server}/{env['GITHUB_REPOSITORY']}" if env.get("GITHUB_REPOSITORY") else ""
        run_id = env.get("GITHUB_RUN_ID", "")
        return {
            "system": "github",
            "commit_sha": env.get("GITHUB_SHA", ""),
            "ref": env.get("GITHUB_REF_NAME", ""),
            "build_id": run_id,
            "build_url": f"{repository}/actions/runs/{run_id}" if repository and run_id else "",
            "repository": repository,
        }
    if env.get("GIT_COMMIT"):
        branch = env.get("GIT_BRANCH", "")
        return {
            "system": "jenkins",
            "commit_sha": env.get("GIT_COMMIT", ""),
            "ref": branch[len("origin/") :] if branch.startswith("origin/") else branch,
            "build_id": env.get("BUILD_ID") or env.get("BUILD_NUMBER", ""),
            "build_url": env.get("BUILD_URL", ""),
            "repository": env.get("GIT_URL", ""),
        }
    return {
        "system": "",
        "commit_sha": "",
        "ref": "",
        "build_id": "",
        "build_url": "",
        "repository": "",
    }


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_argument(value):
    """A JSON object given inline or as @path to a file."""
    if value is None:
        return None
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as handle:
            value = handle.read()
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return parsed


def dataset_ref(value):
    name, sep, version = value.rpartition("@")
    if not sep or not name or not version:
        raise argparse.ArgumentTypeError("a dataset is name@version")
    return {"name": name, "version": version}


class Portal:
    def __init__(self, url, token, insecure=False):
        self.url = portal_url(url, insecure)
        self.token = token
        self.opener = urllib.request.build_opener(NoRedirects)

    def post(self, path, body):
        return self.request("POST", path, body)

    def request(self, method, path, body=None):
        """(status, JSON body). Retries what a retry can fix: no answer, 502/503/504. Safe
        because every retry of a POST carries the same Idempotency-Key: the portal answers it
        with the first attempt's answer instead of acting twice."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        last_error = None
        for attempt in range(RETRIES):
            request = urllib.request.Request(  # noqa: S310 - the URL is the configured portal
                f"{self.url}{path}",
                data=data,
                method=method,
                headers=headers,
            )
            try:
                # portal_url() allowed http(s) only, never file:.
                with self.opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                    return response.status, portal_json(response, response.read())
            except urllib.error.HTTPError as error:
                if 300 <= error.code < 400:
                    raise Untrusted(
                        f"{request.full_url} answered with a redirect (HTTP {error.code}) to "
                        f"{error.headers.get('Location', 'nowhere')}: not followed, so the token "
                        "was not sent there. Set GATEHOUSE_URL to the portal's own address."
                    ) from None
                if error.code in (502, 503, 504):
                    last_error = f"HTTP {error.code}"
                else:
                    return error.code, portal_json(error, error.read())
            except (urllib.error.URLError, OSError) as error:
                last_error = str(getattr(error, "reason", error))
            time.sleep(2**attempt)
        raise Unreachable(
            f"{self.url} did not answer: {last_error}. Check GATEHOUSE_URL and that this runner "
            "reaches the portal, then rerun."
        )


def portal_json(response, payload):
    """The portal always answers a JSON object. Anything else, a proxy's sign-in page above all,
    is not the portal speaking: a 200 must not read as "allowed", nor a 401 as a refusal."""
    content_type = response.headers.get_content_type()
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if content_type != "application/json" or not isinstance(answer, dict):
        raise Untrusted(
            f"{response.url} answered HTTP {response.status} with {content_type}, which is not "
            "a Gatehouse answer (a proxy or sign-in page in front of the portal?). Refused."
        )
    return answer


# A gate decision's keys: only its reasons are refusals, the rest are not field errors.
GATE_DECISION_KEYS = {
    "code",
    "detail",
    "reasons",
    "allowed",
    "change_request",
    "warnings",
    "policy_version",
    "soak",
    "decided_at",
}


def in_words(moment, now=None):
    """An ISO-8601 moment as a person reads it: "Friday 4 December 2026, 09:00 UTC (in 3 days)"."""
    try:
        when = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return str(moment)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    now = now or datetime.datetime.now(UTC)
    text = f"{when:%A} {when.day} {when:%B %Y, %H:%M} UTC"
    hours = (when - now).total_seconds() / 3600
    if hours <= 0:
        return f"{text} (already passed: ask again)"
    if hours < 24:
        whole = max(1, round(hours))
        return f"{text} (in {whole} hour{'s' if whole != 1 else ''})"
    days = round(hours / 24)
    return f"{text} (in {days} day{'s' if days != 1 else ''})"


def describe_refusal(status, answer):
    lines = [f"Gatehouse refused (HTTP {status})"]
    if isinstance(answer, dict):
        if "code" in answer:
            lines.append(f"  {answer['code']}: {answer.get('detail', '')}")
        for reason in answer.get("reasons") or []:
            lines.append(f"  {reason.get('code')}: {reason.get('message')}")
        soak = answer.get("soak") or {}
        if soak.get("earliest_allowed_at"):
            lines.append(
                "  The soak allows this deployment from "
                f"{in_words(soak['earliest_allowed_at'])} at the earliest."
            )
        for field, messages in answer.items():
            if field in GATE_DECISION_KEYS:
                continue
            for message in messages if isinstance(messages, list) else [messages]:
                lines.append(f"  {field}: {message}")
        if "detail" in answer and "code" not in answer:
            lines.append(f"  {answer['detail']}")
    return "\n".join(lines)


def expect(status, answer, *ok):
    if status not in ok:
        raise Refused(describe_refusal(status, answer))
    return answer


def command_context(portal, args, context):
    return context


def command_dataset(portal, args, context):
    sha256 = args.sha256 or sha256_of(args.file)
    body = {"name": args.name, "version": args.version, "uri": args.uri, "sha256": sha256}
    if args.rows is not None:
        body["rows"] = args.rows
    if args.schema_sha256 or args.schema_file:
        body["schema_sha256"] = args.schema_sha256 or sha256_of(args.schema_file)
    return expect(*portal.post("/api/v1/datasets/", body), 200, 201)


def command_model(portal, args, context):
    body = {
        "name": args.name,
        "owner_team": args.owner_team,
        "description": args.description,
        "risk_tier": args.risk_tier,
    }
    return expect(*portal.post("/api/v1/models/", body), 200, 201)


def command_build(portal, args, context):
    fields = {
        "repository": args.repository or context["repository"],
        "commit_sha": args.commit or context["commit_sha"],
        "build_id": args.build_id or context["build_id"],
    }
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise SystemExit(
            f"error: {', '.join(missing)} unknown: not in the CI variables, pass them as options"
        )
    body = {
        **fields,
        "ref": args.ref or context["ref"],
        "build_url": args.build_url or context["build_url"],
        "artifact_uri": args.artifact_uri,
        "artifact_sha256": args.artifact_sha256 or sha256_of(args.artifact),
        "framework": args.framework,
        "params": args.params or {},
        "metrics": args.metrics or {},
        "datasets": args.dataset,
        "env_lock_sha256": args.env_lock_sha256
        or (sha256_of(args.env_lock) if args.env_lock else ""),
    }
    if args.version:
        body["version"] = args.version
    return expect(*portal.post(f"/api/v1/models/{args.model}/versions/", body), 200, 201)


def command_gate(portal, args, context):
    body = {"environment": args.environment, "model": args.model}
    if args.version:
        body["version"] = args.version
    else:
        body["artifact_sha256"] = args.artifact_sha256 or sha256_of(args.artifact)
    if args.change_request:
        body["change_request"] = args.change_request
    answer = expect(*portal.post("/api/v1/gate/", body), 200)
    if not answer.get("allowed"):
        raise Refused(describe_refusal(200, answer).replace("refused (HTTP 200)", "gate: denied"))
    return answer


def command_deploy_start(portal, args, context):
    body = {"environment": args.environment, "model": args.model, "version": args.version}
    if args.change_request:
        body["change_request"] = args.change_request
    pipeline_url = args.pipeline_url or context["build_url"]
    if pipeline_url:
        body["pipeline_url"] = pipeline_url
    if args.health_url:
        body["health_url"] = args.health_url
    return expect(*portal.post("/api/v1/deployments/", body), 200, 201)


def command_run_start(portal, args, context):
    """A batch job at its start: is the artifact it loaded the one live there? Exit 1 if not,
    so the job's wrapper stops before scoring."""
    body = {
        "environment": args.environment,
        "model": args.model,
        "artifact_sha256": args.artifact_sha256 or sha256_of(args.artifact),
        "job_id": args.job_id,
        "host": args.host or socket.getfqdn(),
    }
    if not body["job_id"]:
        raise SystemExit("error: --job-id unknown: pass it, or set GATEHOUSE_JOB_ID")
    answer = expect(*portal.post("/api/v1/runs/", body), 200, 201)
    if not answer.get("allowed"):
        raise Refused(f"Gatehouse: run refused\n  {answer.get('code')}: {answer.get('detail')}")
    return answer


def command_deploy_result(portal, args, context):
    body = {"status": args.status}
    if args.detail:
        body["detail"] = args.detail
    path = f"/api/v1/deployments/{args.deployment}/result/"
    return expect(*portal.post(path, body), 200, 201)


def parser():
    top = argparse.ArgumentParser(
        prog="gatehouse_ci.py", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    top.add_argument("--url", default=os.environ.get("GATEHOUSE_URL", ""), help="$GATEHOUSE_URL")
    top.add_argument(
        "--token", default=os.environ.get("GATEHOUSE_TOKEN", ""), help="$GATEHOUSE_TOKEN"
    )
    top.add_argument("--field", help="print only this field of the answer (e.g. id)")
    top.add_argument(
        "--insecure",
        action="store_true",
        help="allow a plain http:// GATEHOUSE_URL (a test portal only: the token goes in clear)",
    )
    commands = top.add_subparsers(dest="command", required=True)

    commands.add_parser("context", help="show what was read from the CI variables")

    dataset = commands.add_parser("dataset", help="register a dataset version")
    dataset.add_argument("--name", required=True)
    dataset.add_argument("--version", required=True)
    dataset.add_argument("--uri", required=True)
    digest = dataset.add_mutually_exclusive_group(required=True)
    digest.add_argument("--sha256", help="the content digest, if already known")
    digest.add_argument("--file", help="compute the digest of this file")
    dataset.add_argument("--rows", type=int)
    schema = dataset.add_mutually_exclusive_group()
    schema.add_argument("--schema-sha256")
    schema.add_argument("--schema-file", help="compute the schema digest of this file")

    model = commands.add_parser("model", help="register a model (once)")
    model.add_argument("--name", required=True)
    model.add_argument("--owner-team", required=True, help="the team's slug")
    model.add_argument("--description", default="")
    model.add_argument("--risk-tier", type=int, default=2, choices=[1, 2, 3])

    build = commands.add_parser("build", help="register this build as a model version")
    build.add_argument("--model", required=True)
    build.add_argument("--version", help="omit to let the portal number the build")
    artifact = build.add_mutually_exclusive_group(required=True)
    artifact.add_argument("--artifact", help="the artifact file; its sha256 is computed")
    artifact.add_argument("--artifact-sha256")
    build.add_argument("--artifact-uri", required=True, help="where the artifact is stored")
    build.add_argument("--framework", default="")
    build.add_argument("--params", type=json_argument, help="JSON object or @file")
    build.add_argument("--metrics", type=json_argument, help="JSON object or @file")
    build.add_argument(
        "--dataset", type=dataset_ref, action="append", default=[], help="name@version, repeat"
    )
    lock = build.add_mutually_exclusive_group()
    lock.add_argument("--env-lock", help="the environment lock file (uv.lock, conda-lock.yml…)")
    lock.add_argument("--env-lock-sha256")
    build.add_argument("--repository", help="default: the CI project URL")
    build.add_argument("--commit", help="default: the CI commit SHA")
    build.add_argument("--ref", help="default: the CI branch or tag")
    build.add_argument("--build-id", help="default: the CI pipeline or run id")
    build.add_argument("--build-url", help="default: the CI pipeline or run URL")

    gate = commands.add_parser("gate", help="ask whether a deployment may go ahead")
    gate.add_argument("--environment", required=True)
    gate.add_argument("--model", required=True)
    which = gate.add_mutually_exclusive_group(required=True)
    which.add_argument("--version")
    which.add_argument("--artifact", help="the artifact file; its sha256 is computed")
    which.add_argument("--artifact-sha256")
    gate.add_argument("--change-request", help="CR-42")

    start = commands.add_parser("deploy-start", help="report that a deployment starts")
    start.add_argument("--environment", required=True)
    start.add_argument("--model", required=True)
    start.add_argument("--version", required=True)
    start.add_argument("--change-request", help="CR-42")
    start.add_argument("--pipeline-url", help="default: the CI pipeline or run URL")
    start.add_argument("--health-url", help="where the portal checks the deployment is alive")

    run = commands.add_parser(
        "run-start", help="a batch job attests the artifact it runs (exit 1: do not score)"
    )
    run.add_argument("--environment", required=True)
    run.add_argument("--model", required=True)
    loaded = run.add_mutually_exclusive_group(required=True)
    loaded.add_argument("--artifact", help="the artifact file the job loads; hashed here")
    loaded.add_argument("--artifact-sha256")
    run.add_argument(
        "--job-id",
        default=os.environ.get("GATEHOUSE_JOB_ID", ""),
        help="YARN application id, Airflow run id…; default $GATEHOUSE_JOB_ID",
    )
    run.add_argument("--host", help="default: this machine's name")

    result = commands.add_parser("deploy-result", help="report how a deployment ended")
    result.add_argument("--deployment", required=True, help="the id deploy-start printed")
    result.add_argument("--status", required=True, choices=["succeeded", "failed"])
    result.add_argument("--detail", default="")
    return top


COMMANDS = {
    "context": command_context,
    "dataset": command_dataset,
    "model": command_model,
    "build": command_build,
    "gate": command_gate,
    "deploy-start": command_deploy_start,
    "deploy-result": command_deploy_result,
    "run-start": command_run_start,
}


def main(argv=None):
    args = parser().parse_args(argv)
    context = ci_context()
    if args.command != "context" and (not args.url or not args.token):
        print(
            "error: set GATEHOUSE_URL and GATEHOUSE_TOKEN (or --url and --token)", file=sys.stderr
        )
        return 2
    try:
        portal = None if args.command == "context" else Portal(args.url, args.token, args.insecure)
        answer = COMMANDS[args.command](portal, args, context)
    except Untrusted as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    except (Unreachable, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.field:
        print(answer.get(args.field, "") if isinstance(answer, dict) else "")
    else:
        print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
