"""The CI helper prints a denied gate's reasons only, never the decision's other keys."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.stubs import JsonHandler, serving

HELPER = Path(__file__).resolve().parents[2] / "registry" / "ci" / "gatehouse_ci.py"


def load_helper():
    spec = importlib.util.spec_from_file_location("gatehouse_ci_under_test", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_denied_gate_prints_its_reasons_and_the_soak_date_not_other_keys():
    denied = {
        "allowed": False,
        "change_request": None,
        "reasons": [{"code": "soak_not_met", "message": "The model has not soaked long enough."}],
        "warnings": [],
        "policy_version": 1,
        "soak": {"days": 3, "earliest_allowed_at": "2026-12-04T09:00:00Z", "holds": False},
        "decided_at": "2026-12-01T09:00:00Z",
    }

    text = load_helper().describe_refusal(403, denied)

    assert "soak_not_met: The model has not soaked long enough." in text
    assert "earliest" in text and "Friday 4 December 2026, 09:00 UTC" in text
    for fake in ("allowed:", "change_request:", "policy_version:", "decided_at:", "soak:"):
        assert fake not in text


def test_field_errors_are_still_printed():
    text = load_helper().describe_refusal(400, {"version": ["This field is required."]})

    assert "version: This field is required." in text


def test_the_soak_date_is_said_in_words_with_how_long_to_wait():
    helper = load_helper()
    now = helper.datetime.datetime(2026, 12, 1, 9, 0, tzinfo=helper.UTC)

    assert helper.in_words("2026-12-04T09:00:00Z", now=now) == (
        "Friday 4 December 2026, 09:00 UTC (in 3 days)"
    )
    assert helper.in_words("2026-12-02T09:00:00+00:00", now=now).endswith("(in 1 day)")
    assert helper.in_words("2026-12-01T10:00:00+01:00", now=now).endswith(
        "(already passed: ask again)"
    )
    assert helper.in_words("not a date", now=now) == "not a date"


class DeniesForSoak(JsonHandler):
    def do_POST(self):
        self.server.calls.append(self.path)
        self.answer(
            200,
            {
                "allowed": False,
                "change_request": None,
                "reasons": [{"code": "soak_not_met", "message": "Not live in test for 7 days."}],
                "warnings": [],
                "policy_version": 1,
                "soak": {"days": 3, "earliest_allowed_at": "2031-01-03T09:00:00Z"},
                "decided_at": "2026-12-01T09:00:00Z",
            },
        )


def run_helper(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GATEHOUSE_"))}
    return subprocess.run(
        [sys.executable, str(HELPER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


GATE = ("gate", "--environment", "prod", "--model", "credit-scoring", "--version", "3")


def test_what_a_pipeline_log_shows_for_a_denied_gate_and_its_exit_code():
    with serving(DeniesForSoak) as portal:
        url = "http://{}:{}".format(*portal.server_address)
        result = run_helper("--insecure", "--url", url, "--token", "gh_a_b", *GATE)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Gatehouse gate: denied"
    assert lines[1].strip() == "soak_not_met: Not live in test for 7 days."
    assert "Friday 3 January 2031, 09:00 UTC (in " in lines[2]
    assert len(lines) == 3


def test_usage_and_connection_errors_exit_2():
    unconfigured = run_helper(*GATE)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    unreachable = run_helper(
        "--insecure", "--url", f"http://127.0.0.1:{port}", "--token", "t", *GATE
    )
    bad_option = run_helper("gate", "--environment", "prod")

    assert unconfigured.returncode == 2
    assert "GATEHOUSE_URL" in unconfigured.stderr
    assert unreachable.returncode == 2
    assert "did not answer" in unreachable.stderr
    assert "Check GATEHOUSE_URL and that this runner reaches the portal, then rerun." in (
        unreachable.stderr
    )
    assert bad_option.returncode == 2
