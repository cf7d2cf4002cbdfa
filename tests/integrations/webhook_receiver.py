"""A real HTTP endpoint for the webhook tests: a standard-library server in a thread that keeps
every POST it receives and answers from a script (status, headers), 200 once the script runs
out. It stands in for a Teams or Slack incoming webhook and for a Standard Webhooks receiver."""

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    answers: deque = field(default_factory=deque)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/T0001/B0002/s3cr3t-path-token"

    def answer(self, status: int, headers: dict | None = None, body: str = "") -> None:
        """Answer the next POST so (in the order asked)."""
        self.answers.append((status, headers or {}, body))


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            status, headers, text = (
                receiver.answers.popleft() if receiver.answers else (200, {}, "ok")
            )
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
