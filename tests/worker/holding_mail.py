"""A mail backend for a worker in another process: it notes each attempt as a file, waits while
a `hold` file exists (so a test can kill the worker mid-send), then writes the message as a
file. The folder comes from `GATEHOUSE_TEST_MAIL_DIR`."""

import os
import time
import uuid
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, messages):
        folder = Path(os.environ["GATEHOUSE_TEST_MAIL_DIR"])
        (folder / f"attempt-{uuid.uuid4().hex}").touch()
        while (folder / "hold").exists():
            time.sleep(0.05)
        for message in messages:
            (folder / f"sent-{uuid.uuid4().hex}.eml").write_bytes(message.message().as_bytes())
        return len(messages)
