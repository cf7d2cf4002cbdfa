"""The evidence pack's PDF: the same facts as its JSON, laid out for people (ReportLab)."""

from html import escape
from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

STYLES = getSampleStyleSheet()
GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
    ]
)


def _cell(value: Any) -> Paragraph:
    """Long digests and free text wrap inside their cell instead of running off the page."""
    text = "" if value is None else str(value)
    return Paragraph(
        escape(text).replace("\n", "<br/>"),
        STYLES["BodyText"].clone("cell", fontSize=7.5, leading=9),
    )


def _table(header: list[str], rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    table = Table(
        [[_cell(name) for name in header]] + [[_cell(value) for value in row] for row in rows],
        colWidths=widths,
        repeatRows=1,
    )
    table.setStyle(GRID)
    return table


def _pairs(pairs: list[tuple[str, Any]]) -> Table:
    table = Table(
        [[_cell(name), _cell(value)] for name, value in pairs], colWidths=[45 * mm, 125 * mm]
    )
    table.setStyle(
        TableStyle(
            [("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        )
    )
    return table


def _section(story: list, title: str) -> None:
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(escape(title), STYLES["Heading2"]))


def evidence_pdf(facts: dict[str, Any], *, head: dict[str, Any], events: int) -> bytes:
    change, build = facts["change_request"], facts["build"]
    story: list = [
        Paragraph(escape(f"{change['number']}: {change['title']}"), STYLES["Title"]),
        Paragraph(
            escape(
                f"Evidence pack: {build['model']} {build['version']} to {change['environment']}, "
                f"{change['kind']} change, {change['state']}. Generated {head['generated_at']} "
                f"against the signed head of {head['size']} audit events."
            ),
            STYLES["BodyText"],
        ),
    ]
    _section(story, "Change request")
    story.append(
        _pairs(
            [
                ("Requester", f"{change['requester']} ({change['team']})"),
                ("Justification", change["justification"]),
                ("Risk and impact", change["risk_impact"]),
                ("Test evidence", change["test_evidence"]),
                ("Rollback plan", change["rollback_plan"]),
                (
                    "Window",
                    f"{change['window_start'] or 'none'} to {change['window_end'] or 'none'}",
                ),
                ("Incident", change["incident_ref"] or "none"),
                ("Retrospective due", change["retrospective_due_at"] or "none"),
                ("Content digest (sha256, RFC 8785)", change["content_digest"]),
                ("Policy version", change["policy_version"]),
            ]
        )
    )
    _section(story, "Build")
    story.append(
        _pairs(
            [
                ("Repository", build["repository"]),
                ("Commit", build["commit_sha"]),
                ("CI build", f"{build['build_id']} {build['build_url']}".strip()),
                ("Artifact", build["artifact_uri"]),
                ("Artifact sha256", build["artifact_sha256"]),
                ("Environment lock sha256", build["env_lock_sha256"] or "not recorded"),
                ("Registered", f"{build['registered_at']} by {build['registered_by']}"),
            ]
        )
    )
    story.append(Spacer(1, 2 * mm))
    story.append(
        _table(
            ["Dataset", "Version", "URI", "sha256"],
            [[d["name"], d["version"], d["uri"], d["sha256"]] for d in build["datasets"]]
            or [["none recorded", "", "", ""]],
        )
    )
    _section(story, "Sign-offs")
    story.append(
        _table(
            ["Kind", "Team", "Signer", "Decision and meaning", "Signed", "Policy", "Void"],
            [
                [
                    s["kind"],
                    s["team"] or "",
                    s["signer"]
                    + (f", as delegate of {s['on_behalf_of']}" if s.get("on_behalf_of") else ""),
                    f"{s['decision']}: {s['meaning']}"
                    + (f" ({s['comment']})" if s["comment"] else ""),
                    s["signed_at"],
                    f"v{s['policy_version']}",
                    f"{s['voided_at']}: {s['voided_reason']}" if s["voided_at"] else "",
                ]
                for s in facts["sign_offs"]
            ]
            or [["none", "", "", "", "", "", ""]],
        )
    )
    _section(story, "Gate decisions")
    story.append(
        _table(
            ["Decided", "Purpose", "Allowed", "Reasons", "Policy", "Asked by"],
            [
                [
                    d["decided_at"],
                    d["purpose"],
                    "yes" if d["allowed"] else "no",
                    "; ".join(f"{r['code']}: {r['message']}" for r in d["reasons"]),
                    f"v{d['policy_version']}" if d["policy_version"] else "",
                    d["asked_by"],
                ]
                for d in facts["gate_decisions"]
            ]
            or [["none", "", "", "", "", ""]],
        )
    )
    _section(story, "Deployments and rollbacks")
    story.append(
        _table(
            ["Id", "Kind", "Version", "Status", "Started", "Succeeded", "By", "Reason"],
            [
                [
                    d["id"],
                    d["kind"],
                    d["version"],
                    d["status"],
                    d["started_at"],
                    d["succeeded_at"] or "",
                    d["started_by"],
                    d["reason"],
                ]
                for d in facts["deployments"]
            ]
            or [["none", "", "", "", "", "", "", ""]],
        )
    )
    commits = facts["commits"]
    _section(story, f"Commits in the release (from {commits['from_version'] or 'nothing live'})")
    if not commits["known"]:
        story.append(Paragraph(escape(f"Not readable: {commits['note']}."), STYLES["BodyText"]))
    else:
        story.append(
            _table(
                ["Commit", "Author", "Authored", "Subject"],
                [
                    [
                        c["sha"][:12],
                        f"{c['author']} <{c['author_email']}>",
                        c["authored_at"],
                        c["subject"],
                    ]
                    for c in commits["list"]
                ]
                or [["none", "", "", ""]],
            )
        )
    _section(story, "Audit trail")
    story.append(
        Paragraph(
            escape(
                f"{events} audit events concern this change, its build and its deployments; "
                "they are in events.jsonl, each with its Merkle inclusion proof against the "
                f"signed head in head.json (size {head['size']}, root {head['root']}). "
                "Verify the pack with: python -m audit.offline_verify --evidence <pack.zip>"
            ),
            STYLES["BodyText"],
        )
    )
    out = BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"{change['number']} evidence",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    ).build(story)
    return out.getvalue()
