"""A mail backend that fails like a flaky SMTP relay a set number of times, then delivers."""

import smtplib

from django.core.mail.backends.locmem import EmailBackend

failures_left = {"count": 0}
attempts = {"count": 0}


class FlakyEmailBackend(EmailBackend):
    def send_messages(self, messages):
        attempts["count"] += 1
        if failures_left["count"] > 0:
            failures_left["count"] -= 1
            raise smtplib.SMTPServerDisconnected("relay went away")
        return super().send_messages(messages)
