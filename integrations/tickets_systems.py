"""What a change request looks like in ServiceNow and in Jira, and the few calls that put it
there. Every call is safe to repeat: a record is looked for by its correlation before one is
filed, updates send the whole state (PATCH, PUT), a resolution comment carries a marker that is
looked for first, and a transition to Done is made only from a status that is not done yet.

`change` is the snapshot that `integrations.tickets.change_snapshot` took when the transition
was claimed; the clients only translate it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from django.conf import settings

from integrations.models import TicketSystem, TicketTransition
from integrations.tickets_http import Connection, TicketSystemError


@dataclass(frozen=True)
class Link:
    external_id: str
    reference: str
    url: str


class RecordGone(TicketSystemError):
    """The linked record is not there any more (deleted, or out of the account's sight): the
    next attempt looks for it by its correlation or files it again."""


class TicketClient(Protocol):
    def find(self, correlation: str) -> Link | None: ...

    def create(self, correlation: str, change: dict) -> Link: ...

    def update(self, link: Link, correlation: str, change: dict) -> None: ...

    def resolve(self, link: Link, correlation: str, transition: TicketTransition) -> None: ...


def _moment(value: str | None, pattern: str = "%Y-%m-%d %H:%M UTC") -> str:
    return datetime.fromisoformat(value).strftime(pattern) if value else ""


def change_description(change: dict) -> str:
    """The change as plain text, the same in both systems: the justification, the exact build,
    the sign-offs so far, the gate's answer and the way back to Gatehouse."""
    window = (
        f"{_moment(change['window_start'])} to {_moment(change['window_end'])}"
        if change["window_start"]
        else "none (an emergency change is valid 24 hours from its authorisation)"
        if change["kind"] == "emergency"
        else "none"
    )
    lines = [
        change["justification"],
        "",
        f"Model: {change['model']} {change['version']}",
        f"Commit: {change['commit_sha']}",
        f"Artifact sha256: {change['artifact_sha256']}",
        f"Environment: {change['environment']}",
        f"Requested by: {change['requester']} ({change['team']})",
        f"Window: {window}",
    ]
    if change["incident_ref"]:
        lines.append(f"Incident: {change['incident_ref']}")
    lines += ["", f"State in Gatehouse: {change['state_label']}", "", "Sign-offs so far:"]
    lines += [
        f"- {s['label']}: {s['decision']} by {s['signer']}, {_moment(s['signed_at'])}"
        for s in change["sign_offs"]
    ] or ["- none yet"]
    gate = change["gate"]
    if gate is not None:
        lines.append("")
        if gate["allowed"]:
            lines.append("Gate: would allow the deployment now.")
        else:
            lines.append("Gate: would refuse the deployment now:")
            lines += [f"- {reason['code']}: {reason['message']}" for reason in gate["reasons"]]
    if change["result_notes"]:
        lines += ["", "Result:", change["result_notes"]]
    lines += ["", f"Last transition: {change['transition']}", f"Gatehouse: {change['link']}"]
    return "\n".join(lines)


def _summary(change: dict, limit: int) -> str:
    return f"{change['number']} {change['title']}"[:limit]


# ServiceNow's change states (the state model of change_request) and approvals.
# ServiceNow's change types: a standard change (issue 18) is its "standard" type; a template's
# approval is a normal change there.
TICKET_TYPES = {"emergency": "emergency", "standard": "standard"}
SERVICENOW_STATES = {
    "draft": "-5",  # New
    "in_review": "-4",  # Assess
    "in_approval": "-3",  # Authorize
    "awaiting_authorisation": "-3",
    "approved": "-2",  # Scheduled
    "authorised": "-2",
    "retro_review": "0",  # Review
    "deployed": "3",  # Closed
    "closed": "3",
    "rolled_back": "3",
    "cancelled": "4",  # Canceled
    "rejected": "4",
    "expired": "4",
}
SERVICENOW_APPROVALS = {
    "in_review": "requested",
    "in_approval": "requested",
    "awaiting_authorisation": "requested",
    "approved": "approved",
    "authorised": "approved",
    "deployed": "approved",
    "retro_review": "approved",
    "closed": "approved",
    "rolled_back": "approved",
    "expired": "approved",
    "rejected": "rejected",
}
SERVICENOW_TABLE = "/api/now/table/change_request"
SERVICENOW_FIELDS = "sys_id,number"


class ServiceNow:
    """The Table API on `change_request`; the record carries `correlation_id`."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def fields(self, correlation: str, change: dict) -> dict[str, str]:
        done = change["done"]
        fields = {
            "short_description": _summary(change, 160),
            "description": change_description(change),
            "type": TICKET_TYPES.get(change["kind"], "normal"),
            "state": SERVICENOW_STATES[change["state"]],
            "approval": SERVICENOW_APPROVALS.get(change["state"], "not requested"),
            "justification": change["justification"],
            "risk_impact_analysis": change["risk_impact"],
            "test_plan": change["test_evidence"],
            "backout_plan": change["rollback_plan"],
            "implementation_plan": (
                f"Deploy {change['model']} {change['version']} (artifact sha256 "
                f"{change['artifact_sha256']}) to {change['environment']} through the CD "
                "pipeline; Gatehouse's gate decides whether it may go ahead."
            ),
            "start_date": _moment(change["window_start"], "%Y-%m-%d %H:%M:%S"),
            "end_date": _moment(change["window_end"], "%Y-%m-%d %H:%M:%S"),
            "correlation_id": correlation,
            "correlation_display": "Gatehouse",
            "close_code": change["outcome"] if done and change["outcome"] != "cancelled" else "",
            "close_notes": change["result_notes"] if done else "",
        }
        if settings.GATEHOUSE_TICKETS_SERVICENOW_ASSIGNMENT_GROUP:
            fields["assignment_group"] = settings.GATEHOUSE_TICKETS_SERVICENOW_ASSIGNMENT_GROUP
        if settings.GATEHOUSE_TICKETS_SERVICENOW_CATEGORY:
            fields["category"] = settings.GATEHOUSE_TICKETS_SERVICENOW_CATEGORY
        return fields

    def _link(self, record: Any) -> Link:
        if not isinstance(record, dict) or not record.get("sys_id"):
            raise TicketSystemError(f"ServiceNow answered without a sys_id: {record!r:.200}")
        sys_id = str(record["sys_id"])
        return Link(
            external_id=sys_id,
            reference=str(record.get("number") or sys_id),
            url=f"{self.connection.base_url}/change_request.do?sys_id={quote(sys_id)}",
        )

    def find(self, correlation: str) -> Link | None:
        answer = self.connection.call(
            "GET",
            SERVICENOW_TABLE,
            query={
                "sysparm_query": f"correlation_id={correlation}",
                "sysparm_fields": SERVICENOW_FIELDS,
                "sysparm_limit": "1",
            },
        )
        found = (answer or {}).get("result") or []
        return self._link(found[0]) if found else None

    def create(self, correlation: str, change: dict) -> Link:
        answer = self.connection.call(
            "POST",
            SERVICENOW_TABLE,
            query={"sysparm_fields": SERVICENOW_FIELDS},
            body=self.fields(correlation, change),
        )
        return self._link((answer or {}).get("result"))

    def update(self, link: Link, correlation: str, change: dict) -> None:
        try:
            self.connection.call(
                "PATCH",
                f"{SERVICENOW_TABLE}/{quote(link.external_id, safe='')}",
                query={"sysparm_fields": SERVICENOW_FIELDS},
                body=self.fields(correlation, change),
            )
        except TicketSystemError as error:
            if error.status == 404:
                raise RecordGone(error.detail, status=404) from error
            raise

    def resolve(self, link: Link, correlation: str, transition: TicketTransition) -> None:
        """The result is in the record's state, close code and close notes, sent in full."""


class Jira:
    """Issues of the configured project and type, labelled with the correlation; the result is
    a comment and the transition to Done."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def fields(self, correlation: str, change: dict) -> dict[str, Any]:
        return {
            "summary": _summary(change, 255),
            "description": change_description(change),
            "labels": [settings.GATEHOUSE_TICKETS_PREFIX, correlation],
        }

    def _issue(self, key: str) -> str:
        return f"/rest/api/2/issue/{quote(key, safe='')}"

    def _link(self, issue: Any) -> Link:
        if not isinstance(issue, dict) or not issue.get("key"):
            raise TicketSystemError(f"Jira answered without an issue key: {issue!r:.200}")
        key = str(issue["key"])
        return Link(
            external_id=str(issue.get("id") or key),
            reference=key,
            url=f"{self.connection.base_url}/browse/{quote(key)}",
        )

    def find(self, correlation: str) -> Link | None:
        project = settings.GATEHOUSE_TICKETS_JIRA_PROJECT.replace('"', "")
        answer = self.connection.call(
            "GET",
            "/rest/api/2/search",
            query={
                "jql": f'project = "{project}" AND labels = "{correlation}" ORDER BY created ASC',
                "fields": "key",
                "maxResults": "1",
            },
        )
        found = (answer or {}).get("issues") or []
        return self._link(found[0]) if found else None

    def create(self, correlation: str, change: dict) -> Link:
        fields = {
            "project": {"key": settings.GATEHOUSE_TICKETS_JIRA_PROJECT},
            "issuetype": {"name": settings.GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE},
            **self.fields(correlation, change),
        }
        return self._link(
            self.connection.call("POST", "/rest/api/2/issue", body={"fields": fields})
        )

    def update(self, link: Link, correlation: str, change: dict) -> None:
        try:
            self.connection.call(
                "PUT",
                self._issue(link.reference),
                body={"fields": self.fields(correlation, change)},
            )
        except TicketSystemError as error:
            if error.status == 404:
                raise RecordGone(error.detail, status=404) from error
            raise

    def resolve(self, link: Link, correlation: str, transition: TicketTransition) -> None:
        """The transition's result as a comment (once: its marker is looked for first), then,
        when the change is over, the issue moved to Done unless it is there already."""
        issue = self._issue(link.reference)
        if transition.resolution:
            marker = f"[{correlation} event {transition.event_id}]"
            answer = self.connection.call(
                "GET", f"{issue}/comment", query={"orderBy": "-created", "maxResults": "100"}
            )
            bodies = [str(c.get("body", "")) for c in (answer or {}).get("comments") or []]
            if not any(marker in body for body in bodies):
                self.connection.call(
                    "POST",
                    f"{issue}/comment",
                    body={"body": f"{transition.resolution}\n\n{marker}"},
                )
        if not transition.change["done"]:
            return
        answer = self.connection.call("GET", issue, query={"fields": "status"})
        status = ((answer or {}).get("fields") or {}).get("status") or {}
        if (status.get("statusCategory") or {}).get("key") == "done":
            return
        answer = self.connection.call("GET", f"{issue}/transitions")
        transitions = (answer or {}).get("transitions") or []
        wanted = settings.GATEHOUSE_TICKETS_JIRA_DONE_TRANSITION.casefold()
        chosen = next(
            (t for t in transitions if str(t.get("name", "")).casefold() == wanted), None
        ) or next(
            (
                t
                for t in transitions
                if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"
            ),
            None,
        )
        if chosen is None:
            raise TicketSystemError(
                f"{link.reference} has no transition to a done status from "
                f"{status.get('name', 'its status')}."
            )
        self.connection.call(
            "POST", f"{issue}/transitions", body={"transition": {"id": chosen["id"]}}
        )


CLIENTS = {TicketSystem.SERVICENOW: ServiceNow, TicketSystem.JIRA: Jira}


def ticket_client(system: str, connection: Connection) -> TicketClient:
    return CLIENTS[system](connection)
