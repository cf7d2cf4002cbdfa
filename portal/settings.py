"""Gatehouse settings, read from the environment in this one place.

The defaults embed everything (SQLite and a file-system Celery broker under `var/`, mail to the
console) so that `make run` needs no server. `DJANGO_ENV=production` selects the hardened profile,
which refuses to start without a secret key and allowed hosts.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.ldap_settings import directory_settings
from portal.oidc_settings import provider_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GATEHOUSE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DJANGO_ENV = os.environ.get("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'development' or 'production'.")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    missing = [
        name for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS") if not os.environ.get(name)
    ]
    if missing:
        raise ImproperlyConfigured(
            f"The production profile needs {', '.join(missing)} in the environment."
        )
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
else:
    SECRET_KEY = os.environ.get(
        "DJANGO_SECRET_KEY", "development-only-not-secret-gatehouse-key-0123456789abcdef"
    )
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in the production profile.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "portal",
    "audit",
    "organisation",
    "registry",
    "releases",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "portal.middleware.RejectNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.PagesLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "portal.middleware.MethodNotAllowedPageMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.unread_notifications",
                "portal.context_processors.session_ends_at",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'gatehouse.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE serialises writers, so the audit tail is read under the write lock.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if os.environ.get("DATABASE_REPLICA_URL"):
    # Auditor reads go to a streaming replica (portal/db_router.py); tests mirror the primary.
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["DATABASE_REPLICA_URL"],
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["portal.db_router.AuditReplicaRouter"]
# The gate's question runs as a statement prepared once per connection on PostgreSQL; turn it off
# behind a pooler in transaction mode (PgBouncer), which moves clients between connections.
GATEHOUSE_PREPARED_STATEMENTS = env_bool("GATEHOUSE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The floor under a production environment's policy: this many approval teams, a peer review and
# a soak (releases/services/policy.py); an administrator cannot save less.
# How long a retried POST with the same Idempotency-Key gets the first answer back (days).
GATEHOUSE_IDEMPOTENCY_DAYS = int(os.environ.get("GATEHOUSE_IDEMPOTENCY_DAYS", "30"))
# Model risk (registry/model_risk.py): the team whose members validate models, and how many
# months a validation stays valid for a model of tier 1, 2 and 3 (its materiality).
GATEHOUSE_MODEL_RISK_TEAM = os.environ.get("GATEHOUSE_MODEL_RISK_TEAM", "model-risk")
GATEHOUSE_VALIDATION_MONTHS = dict(
    zip(
        (1, 2, 3),
        (
            int(months)
            for months in os.environ.get("GATEHOUSE_VALIDATION_MONTHS", "12,24,36").split(",")
        ),
        strict=True,
    )
)
GATEHOUSE_MIN_PROD_TEAMS = int(os.environ.get("GATEHOUSE_MIN_PROD_TEAMS", "3"))
# Artifact verification (registry/artifacts.py): the stores the portal reads a registered
# build's checksum from (any of s3, artifactory, file, http; none by default, so every version is
# recorded "unverified" until an operator connects a store). Credentials come from the
# environment only: AWS_* for S3 (boto3's own chain), GATEHOUSE_ARTIFACTORY_TOKEN.
GATEHOUSE_ARTIFACT_STORES = env_list("GATEHOUSE_ARTIFACT_STORES")
GATEHOUSE_S3_ENDPOINT_URL = os.environ.get("GATEHOUSE_S3_ENDPOINT_URL", "")
GATEHOUSE_ARTIFACTORY_URL = os.environ.get("GATEHOUSE_ARTIFACTORY_URL", "").rstrip("/")
# file:// artifacts are hashed only under these directories (not any file the portal can read).
GATEHOUSE_ARTIFACT_FILE_ROOTS = env_list("GATEHOUSE_ARTIFACT_FILE_ROOTS")
GATEHOUSE_ARTIFACT_TIMEOUT = float(os.environ.get("GATEHOUSE_ARTIFACT_TIMEOUT", "10"))
GATEHOUSE_ARTIFACT_MAX_BYTES = int(os.environ.get("GATEHOUSE_ARTIFACT_MAX_BYTES", str(2**30)))
# The MLflow Model Registry as a source of versions (integrations/mlflow_source.py,
# docs/operations.md "MLflow"). The token is MLflow's own MLFLOW_TRACKING_TOKEN (or
# MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD), read by the client from the
# environment and never stored. Unset, nothing is imported.
GATEHOUSE_MLFLOW_TRACKING_URI = os.environ.get("GATEHOUSE_MLFLOW_TRACKING_URI", "").rstrip("/")
# Which MLflow aliases and stages stand for which environment, `alias:champion=prod,
# stage:Production=prod`: a version moved there that is not live there is flagged (rule 14).
GATEHOUSE_MLFLOW_PROMOTIONS = env_list("GATEHOUSE_MLFLOW_PROMOTIONS")
# Runtime observation (issue 20, releases/cluster.py): each environment names its API server,
# namespace and the variable holding its token (admin); these apply to every cluster read.
GATEHOUSE_KUBERNETES_CA_FILE = os.environ.get("GATEHOUSE_KUBERNETES_CA_FILE", "")
GATEHOUSE_KUBERNETES_TIMEOUT = float(os.environ.get("GATEHOUSE_KUBERNETES_TIMEOUT", "10"))
# The team whose members hear that a cluster cannot be read, and that it can again.
GATEHOUSE_PLATFORM_TEAM = os.environ.get("GATEHOUSE_PLATFORM_TEAM", "platform-operations")
# Conflicts (issue 18): the gate warns `signer_overloaded` when the only approver of a team is
# needed on more changes than this whose windows start on one day.
GATEHOUSE_SIGNER_CHANGES_PER_DAY = int(os.environ.get("GATEHOUSE_SIGNER_CHANGES_PER_DAY", "5"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "portal.backends.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Optional sign-in through the bank's directory: on when LDAP_SERVER_URI is set (the LDAP_*
# variables are read in portal/ldap_settings.py). Local accounts keep working after it.
_directory = directory_settings(os.environ)
globals().update(_directory)
if _directory:
    AUTHENTICATION_BACKENDS.insert(1, "organisation.ldap_backend.DirectoryBackend")
# Optional single sign-on at the bank's OpenID Connect provider: on when OIDC_ISSUER is set (the
# OIDC_* variables are read in portal/oidc_settings.py). Local and directory accounts keep working.
OIDC_OP_ISSUER = ""
try:
    _provider = provider_settings(os.environ)
except ValueError as unreadable:
    raise ImproperlyConfigured(str(unreadable)) from unreadable
globals().update(_provider)
if _provider:
    AUTHENTICATION_BACKENDS.append("organisation.oidc.ProviderBackend")
# Signing re-authenticates people who sign in at the provider there (rule 6): the signature
# counts only if they signed in again after being sent and at most this many seconds ago.
GATEHOUSE_OIDC_STEP_UP_SECONDS = int(os.environ.get("GATEHOUSE_OIDC_STEP_UP_SECONDS", "300"))
# Sign-in throttling (django-axes): five failures for one username from one address lock that
# pair out for a quarter of an hour.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("GATEHOUSE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = not PRODUCTION
# Documents (validation reports, model cards): under var/ by default; in production an
# S3-compatible bucket through django-storages (docs/deploy.md). Never served as media: the
# registry hands them out to signed-in people only, after checking their digest.
MEDIA_ROOT = Path(os.environ.get("GATEHOUSE_MEDIA_ROOT", VAR_DIR / "documents"))
GATEHOUSE_DOCUMENT_MAX_BYTES = int(os.environ.get("GATEHOUSE_DOCUMENT_MAX_BYTES", str(20 * 2**20)))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

PORTAL_BASE_URL = os.environ.get("GATEHOUSE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Mail: the console in the embedded default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "gatehouse@localhost")

# Celery: a file-system broker under var/ by default, Redis or RabbitMQ by URL in production.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Audit checkpoints are signed with Ed25519. Production reads the PEM private key from the
# environment; the embedded default generates one under var/ on first use.
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = Path(
    os.environ.get("AUDIT_SIGNING_KEY_FILE", VAR_DIR / "audit_signing_key.pem")
)
if PRODUCTION and not AUDIT_SIGNING_KEY:
    raise ImproperlyConfigured("The production profile needs AUDIT_SIGNING_KEY (Ed25519, PEM).")
# Every checkpoint is also written here, one signed file each, and POSTed to AUDIT_WITNESS_URL
# when set (docs/audit.md, "The witness"). Production: storage the portal cannot rewrite.
AUDIT_WITNESS_DIR = Path(os.environ.get("AUDIT_WITNESS_DIR", VAR_DIR / "audit_witness"))
AUDIT_WITNESS_URL = os.environ.get("AUDIT_WITNESS_URL", "")

GITLAB_TOKEN = os.environ.get("GITLAB_TOKEN", "")

# Platforms that ask the gate themselves (docs/ci.md, "A gate the pipeline cannot skip"). Empty
# secrets refuse every delivery: nobody can drive an answer through an unconfigured receiver.
GITLAB_WEBHOOK_TOKEN = os.environ.get("GITLAB_WEBHOOK_TOKEN", "")
GITHUB_API_URL = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
GITHUB_APP_ID = os.environ.get("GITHUB_APP_ID", "")
GITHUB_APP_PRIVATE_KEY = os.environ.get("GITHUB_APP_PRIVATE_KEY", "")
GITHUB_APP_WEBHOOK_SECRET = os.environ.get("GITHUB_APP_WEBHOOK_SECRET", "")

# Chat and webhook subscriptions (docs/operations.md, "Chat and webhooks"). Signing secrets and
# endpoint URLs (a Teams or Slack URL is itself a credential) are stored encrypted with the first
# of GATEHOUSE_WEBHOOK_KEYS (Fernet keys, comma-separated; the others still decrypt, for
# rotation); unset, one key is derived from the secret key. Plain http is refused except to
# 127.0.0.1, ::1 or localhost, and to those only when GATEHOUSE_WEBHOOKS_ALLOW_LOCAL_HTTP is on
# (by default: when DEBUG is).
WEBHOOK_ENCRYPTION_KEYS = env_list("GATEHOUSE_WEBHOOK_KEYS")
WEBHOOK_ALLOW_LOCAL_HTTP = env_bool("GATEHOUSE_WEBHOOKS_ALLOW_LOCAL_HTTP", DEBUG)
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("GATEHOUSE_WEBHOOK_TIMEOUT", "10"))
# After a rotation the previous secret signs too, this long, so receivers can switch over.
WEBHOOK_SECRET_OVERLAP_HOURS = int(os.environ.get("GATEHOUSE_WEBHOOK_SECRET_OVERLAP_HOURS", "24"))

# Change tickets (docs/operations.md, "Change tickets"): every change request mirrored as a
# change record in ServiceNow or an issue in Jira, through the audit trail read as an outbox.
# Unset, nothing is sent and the trail is not read.
GATEHOUSE_TICKETS = os.environ.get("GATEHOUSE_TICKETS", "").strip().lower()
GATEHOUSE_TICKETS_URL = os.environ.get("GATEHOUSE_TICKETS_URL", "").rstrip("/")
GATEHOUSE_TICKETS_USER = os.environ.get("GATEHOUSE_TICKETS_USER", "")
GATEHOUSE_TICKETS_PASSWORD = os.environ.get("GATEHOUSE_TICKETS_PASSWORD", "")
GATEHOUSE_TICKETS_TOKEN = os.environ.get("GATEHOUSE_TICKETS_TOKEN", "")
GATEHOUSE_TICKETS_TIMEOUT = float(os.environ.get("GATEHOUSE_TICKETS_TIMEOUT", "10"))
# Names each record after its change request (`gatehouse-cr-42`): the ServiceNow correlation id
# and the Jira label by which a retry finds a record whose creation it did not hear back about.
# Two portals sharing one ticket system need two prefixes.
GATEHOUSE_TICKETS_PREFIX = os.environ.get("GATEHOUSE_TICKETS_PREFIX", "gatehouse").lower()
GATEHOUSE_TICKETS_SERVICENOW_ASSIGNMENT_GROUP = os.environ.get(
    "GATEHOUSE_TICKETS_SERVICENOW_ASSIGNMENT_GROUP", ""
)
GATEHOUSE_TICKETS_SERVICENOW_CATEGORY = os.environ.get("GATEHOUSE_TICKETS_SERVICENOW_CATEGORY", "")
GATEHOUSE_TICKETS_JIRA_PROJECT = os.environ.get("GATEHOUSE_TICKETS_JIRA_PROJECT", "")
GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE = os.environ.get("GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE", "Task")
GATEHOUSE_TICKETS_JIRA_DONE_TRANSITION = os.environ.get(
    "GATEHOUSE_TICKETS_JIRA_DONE_TRANSITION", "Done"
)
_ticket_problems = [
    problem
    for problem, found in (
        (
            "GATEHOUSE_TICKETS is servicenow or jira",
            GATEHOUSE_TICKETS not in {"servicenow", "jira"},
        ),
        ("GATEHOUSE_TICKETS_URL is missing", not GATEHOUSE_TICKETS_URL),
        (
            "GATEHOUSE_TICKETS_URL must be https in the production profile",
            PRODUCTION and not GATEHOUSE_TICKETS_URL.startswith("https://"),
        ),
        (
            "GATEHOUSE_TICKETS_TOKEN, or GATEHOUSE_TICKETS_USER and _PASSWORD, are missing",
            not (
                GATEHOUSE_TICKETS_TOKEN or (GATEHOUSE_TICKETS_USER and GATEHOUSE_TICKETS_PASSWORD)
            ),
        ),
        (
            "GATEHOUSE_TICKETS_JIRA_PROJECT is missing",
            GATEHOUSE_TICKETS == "jira" and not GATEHOUSE_TICKETS_JIRA_PROJECT,
        ),
        (
            "GATEHOUSE_TICKETS_PREFIX takes ASCII letters, digits and hyphens",
            not GATEHOUSE_TICKETS_PREFIX.isascii()
            or not GATEHOUSE_TICKETS_PREFIX.replace("-", "").isalnum(),
        ),
    )
    if found
]
if GATEHOUSE_TICKETS and _ticket_problems:
    raise ImproperlyConfigured("Change tickets: " + "; ".join(_ticket_problems) + ".")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "portal.schema.GatehouseAutoSchema",
    "EXCEPTION_HANDLER": "portal.exceptions.api_exception_handler",
    # JSON only, as the schema says: a form body cannot say null, a number or a list, so the
    # server would read something else than a client generated from the schema meant (415).
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse API",
    "DESCRIPTION": "Change-release governance for machine-learning models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.schema.document_error_answers",
        "releases.api.schema.releases_schema",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChangeRequestKindEnum": "releases.states.Kind",
        "ChangeRequestStateEnum": "releases.states.State",
        "DeploymentKindEnum": "releases.models.DeploymentKind",
        "DeploymentStatusEnum": "releases.models.DeploymentStatus",
        "SignOffKindEnum": "releases.models.SignOffKind",
        "ActorKindEnum": "audit.models.ActorKind",
        "GateCodeEnum": "releases.services.gate.GateCode",
        "WebhookKindEnum": "integrations.models.WebhookKind",
        "WebhookEventTypeEnum": "integrations.models.WebhookEventType",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# A strict Content Security Policy: the pages load only their own files. Scripts never run
# inline; inline styles are allowed because Swagger UI sets them (styles cannot run code).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SESSION_COOKIE_HTTPONLY = True
# Idle timeout: a session ends this long after its last request (each request extends it). A
# bank's screens are shared and left unlocked; 30 minutes in production, a working day elsewhere.
SESSION_IDLE_MINUTES = int(
    os.environ.get("GATEHOUSE_SESSION_IDLE_MINUTES", "30" if PRODUCTION else "480")
)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
