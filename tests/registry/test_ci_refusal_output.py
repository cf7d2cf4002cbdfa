"""The CI helper prints a denied gate's reasons only, never the decision's other keys."""

import importlib.util
from pathlib import Path

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
    assert "earliest" in text and "2026-12-04T09:00:00Z" in text
    for fake in ("allowed:", "change_request:", "policy_version:", "decided_at:", "soak:"):
        assert fake not in text


def test_field_errors_are_still_printed():
    text = load_helper().describe_refusal(400, {"version": ["This field is required."]})

    assert "version: This field is required." in text
