"""Local stand-ins for ServiceNow and Jira, HTTP servers in a thread of the test, that speak the
subset of their REST APIs the change tickets use, with their real error shapes:

- ServiceNow's Table API on `change_request`: POST, GET with `sysparm_query=correlation_id=…`,
  PATCH by sys_id; errors as `{"error": {"message", "detail"}, "status": "failure"}`.
- Jira's REST API v2: create, edit, read the status of an issue, its transitions and comments,
  and JQL search by label; errors as `{"errorMessages": [...], "errors": {field: message}}`.

Both check the Authorization header (401 otherwise), and a test scripts faults: an answer given
instead of acting (429 with Retry-After, 500, ...), or the request acted on and then the
connection dropped or the answer delayed past the client's timeout: the create whose answer is
lost."""

import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: object


@dataclass
class Fault:
    """The next request with `method` whose path contains `path` meets this: `answer` (the
    status, body and headers given instead of acting), `drop` (acted on, then the connection
    closes without an answer) or `slow` (acted on, answered after `delay` seconds)."""

    method: str
    mode: str = "answer"
    path: str = ""
    status: int = 500
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 1.5


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, authorization: str):
        super().__init__(("127.0.0.1", 0), handler)
        self.authorization = authorization
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path in path:
                    self.faults.remove(fault)
                    return fault
        return None

    def sent(self, method: str, pattern: str = "") -> list[Call]:
        """The requests received with `method` whose path matches `pattern`."""
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]


class Handler(BaseHTTPRequestHandler):
    server: StandIn
    unauthorised: object = None

    def log_message(self, *args):
        pass

    def answer(self, status: int, body=None, headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.server.calls.append(Call(self.command, parts.path, query, body))
        if self.headers.get("Authorization") != self.server.authorization:
            self.answer(401, self.unauthorised)
            return
        fault = self.server.take_fault(self.command, parts.path)
        if fault is not None and fault.mode == "answer":
            self.answer(fault.status, fault.body, fault.headers)
            return
        with self.server.lock:
            status, answer = self.route(self.command, parts.path, query, body)
        if fault is not None and fault.mode == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.delay)
        with contextlib.suppress(OSError):  # the client may have given up waiting
            self.answer(status, answer)

    do_GET = do_POST = do_PUT = do_PATCH = _handle

    def route(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        raise NotImplementedError


def servicenow_error(message: str, detail: str = "") -> dict:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


class ServiceNowHandler(Handler):
    unauthorised = servicenow_error(
        "User Not Authenticated", "Required to provide Auth information"
    )
    TABLE = "/api/now/table/change_request"

    def _fields(self, record: dict, query: dict) -> dict:
        wanted = query.get("sysparm_fields")
        return {k: v for k, v in record.items() if k in wanted.split(",")} if wanted else record

    def route(self, method, path, query, body):
        records: dict[str, dict] = self.server.records
        if not isinstance(body, dict | None):
            return 400, servicenow_error(
                "Exception while reading request", "The payload is not valid JSON."
            )
        if path == self.TABLE and method == "POST":
            record = {
                **body,
                "sys_id": uuid.uuid4().hex,
                "number": f"CHG{30000 + next(self.server.numbers):07d}",
            }
            records[record["sys_id"]] = record
            return 201, {"result": self._fields(record, query)}
        if path == self.TABLE and method == "GET":
            match = re.fullmatch(r"correlation_id=(.*)", query.get("sysparm_query", ""))
            found = [r for r in records.values() if match and r.get("correlation_id") == match[1]]
            limit = int(query.get("sysparm_limit", 10000))
            return 200, {"result": [self._fields(r, query) for r in found[:limit]]}
        if path.startswith(self.TABLE + "/") and method == "PATCH":
            record = records.get(path.rsplit("/", 1)[1])
            if record is None:
                return 404, servicenow_error(
                    "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
                )
            record.update(body)
            self.server.updates.setdefault(record["sys_id"], []).append(body)
            return 200, {"result": self._fields(record, query)}
        return 400, servicenow_error("Invalid table", path)


def jira_error(*messages: str, **fields: str) -> dict:
    return {"errorMessages": list(messages), "errors": fields}


TO_DO = {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}
IN_PROGRESS = {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}
DONE = {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}
WORKFLOW = {"11": ("To Do", TO_DO), "21": ("In Progress", IN_PROGRESS), "31": ("Done", DONE)}
ISSUE_TYPES = {"Task", "Change"}


class JiraHandler(Handler):
    unauthorised = jira_error(
        "You are not authenticated. Authentication required to perform this operation."
    )
    ISSUE = re.compile(r"/rest/api/2/issue/([A-Z]+-\d+)(/transitions|/comment)?")

    def route(self, method, path, query, body):
        issues: dict[str, dict] = self.server.issues
        if path == "/rest/api/2/issue" and method == "POST":
            fields = body["fields"]
            if fields["project"]["key"] != self.server.project:
                return 400, jira_error(project="valid project is required")
            if fields["issuetype"]["name"] not in ISSUE_TYPES:
                return 400, jira_error(issuetype="Specify a valid issue type")
            number = next(self.server.numbers)
            key = f"{self.server.project}-{number}"
            issues[key] = {
                "id": str(10000 + number),
                "key": key,
                "fields": dict(fields),
                "status": TO_DO,
                "comments": [],
                "edits": [],
            }
            return 201, {"id": issues[key]["id"], "key": key, "self": f"{self.server.url}/{key}"}
        if path == "/rest/api/2/search" and method == "GET":
            label = re.search(r'labels = "([^"]+)"', query.get("jql", ""))
            found = [i for i in issues.values() if label and label[1] in i["fields"]["labels"]]
            limit = int(query.get("maxResults", 50))
            return 200, {
                "startAt": 0,
                "maxResults": limit,
                "total": len(found),
                "issues": [{"id": i["id"], "key": i["key"], "fields": {}} for i in found[:limit]],
            }
        match = self.ISSUE.fullmatch(path)
        issue = issues.get(match[1]) if match else None
        if issue is None:
            return 404, jira_error("Issue does not exist or you do not have permission to see it.")
        part = match[2]
        if part is None and method == "PUT":
            issue["fields"].update(body["fields"])
            issue["edits"].append(body["fields"])
            return 204, None
        if part is None and method == "GET":
            return 200, {
                "id": issue["id"],
                "key": issue["key"],
                "fields": {"status": issue["status"]},
            }
        if part == "/transitions" and method == "GET":
            return 200, {
                "transitions": [
                    {"id": tid, "name": name, "to": status}
                    for tid, (name, status) in WORKFLOW.items()
                    if status != issue["status"]
                ]
            }
        if part == "/transitions" and method == "POST":
            chosen = WORKFLOW.get(str(body["transition"]["id"]))
            if chosen is None or chosen[1] == issue["status"]:
                return 400, jira_error(
                    f"Transition id '{body['transition']['id']}' is not valid for this issue."
                )
            issue["status"] = chosen[1]
            self.server.moves.append((issue["key"], chosen[0]))
            return 204, None
        if part == "/comment" and method == "GET":
            comments = issue["comments"]
            return 200, {
                "startAt": 0,
                "maxResults": 100,
                "total": len(comments),
                "comments": comments,
            }
        if part == "/comment" and method == "POST":
            comment = {"id": str(len(issue["comments"]) + 1), "body": body["body"]}
            issue["comments"].append(comment)
            return 201, comment
        return 405, jira_error("Method not allowed")


@contextmanager
def servicenow(authorization: str) -> Iterator[StandIn]:
    with _serving(ServiceNowHandler, authorization) as server:
        server.records, server.updates = {}, {}
        yield server


@contextmanager
def jira(authorization: str, project: str) -> Iterator[StandIn]:
    with _serving(JiraHandler, authorization) as server:
        server.issues, server.moves, server.project = {}, [], project
        yield server


@contextmanager
def _serving(handler, authorization: str) -> Iterator[StandIn]:
    server = StandIn(handler, authorization)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
