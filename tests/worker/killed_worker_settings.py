"""Settings for the Celery worker processes of `test_worker_killed.py`: the project's, with
the holding mail backend and a short Redis visibility timeout, so a message whose worker died
unacknowledged is handed out again within seconds instead of an hour."""

from portal.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.worker.holding_mail.EmailBackend"
VISIBILITY_TIMEOUT = 3
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}
