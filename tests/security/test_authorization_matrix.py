"""Who may open what: every URL pattern of the portal (pages, API, the admin's index), generated
from the URL configuration, against every persona, with the status each one must get, on the
demo's data. The tables below are the specification: a URL without an entry fails the test,
naming it with the statuses it answers now, so whoever adds a URL decides who may use it.

Each request runs in a transaction that is rolled back, so a POST that an authorised persona
may make leaves the data as the next request expects it. POSTs send an empty payload:
authorised callers get a validation answer (400, or the form again with its errors), the others
401, 403 or the sign-in page."""

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from audit.models import AuditEvent
from integrations.webhooks import webhook_subscription_create
from portal.exceptions import Conflict
from portal.models import Absence, Scope, Team
from registry.models import Document, Finding, RegisteredModel, Validation
from releases.models import (
    ChangeRequest,
    Environment,
    StandardChangeTemplate,
    UnauthorisedChange,
)
from releases.services.calendar import calendar_feed_issue
from releases.services.deployments import rollback_plan
from tests.conftest import make_service_caller

PEOPLE = ("requester", "peer", "risk", "release", "platform", "changemgr", "auditor", "admin")
TOKENS = tuple(f"token:{scope}" for scope in Scope.values)
PERSONAS = ("anonymous", *PEOPLE, *TOKENS)
SIGN_IN = 302


def _persona(name: str) -> str:
    """`token_audit_read` names the token with the `audit:read` scope."""
    persona = f"token:{name.removeprefix('token_').replace('_', ':', 1)}"
    persona = persona if name.startswith("token_") else name
    assert persona in PERSONAS, f"unknown persona {name}"
    return persona


def row(*, anonymous: int, people: int, tokens: int, **exceptions: int) -> dict[str, int]:
    """The status of every persona: one for the anonymous, one for people, one for tokens,
    then the exceptions by persona."""
    statuses = {"anonymous": anonymous}
    statuses.update(dict.fromkeys(PEOPLE, people))
    statuses.update(dict.fromkeys(TOKENS, tokens))
    statuses.update({_persona(name): status for name, status in exceptions.items()})
    return statuses


def page(**exceptions: int) -> dict[str, int]:
    """A page for every signed-in person; the anonymous and tokens are sent to sign in."""
    return row(anonymous=SIGN_IN, people=200, tokens=SIGN_IN, **exceptions)


def only(people: tuple[str, ...], status: int = 200, others: int = 403) -> dict[str, int]:
    """A page for some people only."""
    return page(**{p: (status if p in people else others) for p in PEOPLE})


def api(*, people: int, tokens: int, **exceptions: int) -> dict[str, int]:
    """An API endpoint: no credentials is 401."""
    return row(anonymous=401, people=people, tokens=tokens, **exceptions)


AUDIT_READERS = ("changemgr", "auditor", "admin")

# The values of the path parameters, per route, from the demo's data (see `demo`).
PARAMETERS: dict[str, dict[str, str]] = {
    "audit/objects/<str:object_type>/<str:object_id>/": {
        "object_type": "object_type",
        "object_id": "object_id",
    },
    "registry/models/<slug:name>/": {"name": "model"},
    "registry/models/<slug:name>/validations/": {"name": "model"},
    "registry/models/<slug:name>/validations/<int:pk>/conclude/": {
        "name": "open_model",
        "pk": "open_validation",
    },
    "registry/documents/<int:pk>/": {"pk": "document"},
    "registry/models/<slug:name>/findings/<int:pk>/close/": {
        "name": "finding_model",
        "pk": "finding",
    },
    "registry/models/<slug:name>/versions/<str:version>/": {"name": "model", "version": "version"},
    "releases/change-requests/<str:number>/": {"number": "change"},
    "releases/change-requests/<str:number>/edit/": {"number": "change"},
    "releases/change-requests/<str:number>/evidence.zip": {"number": "change"},
    "releases/change-requests/<str:number>/submit/": {"number": "change"},
    "releases/change-requests/<str:number>/cancel/": {"number": "change"},
    "releases/change-requests/<str:number>/sign/": {"number": "change"},
    "releases/change-requests/<str:number>/sign-offs/<int:pk>/withdraw/": {
        "number": "change",
        "pk": "sign_off",
    },
    "absences/<int:pk>/cancel/": {"pk": "absence"},
    "releases/environments/<str:name>/": {"name": "environment"},
    "releases/environments/<str:name>/models/<str:model>/rollback/": {
        "name": "environment",
        "model": "live_model",
    },
    "releases/unauthorised-changes/<int:pk>/review/": {"pk": "flag"},
    "releases/deployments/<int:pk>/": {"pk": "deployment"},
    "releases/calendar/feeds/<int:pk>/revoke/": {"pk": "calendar_feed"},
    "releases/calendar/feeds/<str:token>.ics": {"token": "feed_token"},
    "releases/standard-templates/<int:pk>/": {"pk": "standard_template"},
    "releases/standard-templates/<int:pk>/revoke/": {"pk": "standard_template"},
    "releases/standard-templates/<int:pk>/changes/new/": {"pk": "standard_template"},
    "api/v1/models/<slug:name>/versions/": {"name": "model"},
    "api/v1/models/<slug:name>/findings/<int:pk>/close/": {
        "name": "finding_model",
        "pk": "finding",
    },
    "api/v1/models/<slug:name>/inventory/": {"name": "model"},
    "api/v1/models/<slug:name>/validations/": {"name": "model"},
    "api/v1/models/<slug:name>/validations/<int:pk>/findings/": {
        "name": "open_model",
        "pk": "open_validation",
    },
    "api/v1/models/<slug:name>/validations/<int:pk>/conclude/": {
        "name": "open_model",
        "pk": "open_validation",
    },
    "api/v1/models/<slug:name>/versions/<str:version>/": {"name": "model", "version": "version"},
    "api/v1/change-requests/<str:number>/": {"number": "change"},
    "api/v1/change-requests/<str:number>/evidence/": {"number": "change"},
    "api/v1/change-requests/<str:number>/sign-offs/": {"number": "change"},
    "api/v1/deployments/<int:pk>/": {"pk": "deployment"},
    "api/v1/deployments/<int:pk>/result/": {"pk": "deployment"},
    "api/v1/environments/<str:environment>/": {"environment": "environment"},
    "api/v1/environments/<str:environment>/models/<str:name>/rollback/": {
        "environment": "environment",
        "name": "live_model",
    },
    "api/v1/environments/<str:environment>/live/": {"environment": "environment"},
    "integrations/webhooks/<int:pk>/": {"pk": "webhook"},
    "integrations/webhooks/<int:pk>/test/": {"pk": "webhook"},
    "api/v1/webhooks/<int:pk>/": {"pk": "webhook"},
    "api/v1/webhooks/<int:pk>/rotate-secret/": {"pk": "webhook"},
    "api/v1/webhooks/<int:pk>/deactivate/": {"pk": "webhook"},
}

# What a POST sends where an empty payload would stop at validation before the rules are
# asked: these routes' rules depend on who asks, so the payload is valid.
PAYLOADS: dict[str, dict[str, str]] = {
    "releases/environments/<str:name>/models/<str:model>/rollback/": {"reason": "Scores drift."},
    "releases/unauthorised-changes/<int:pk>/review/": {"note": "The digest is a rebuild."},
    "api/v1/environments/<str:environment>/models/<str:name>/rollback/": {
        "reason": "Scores drift."
    },
    "api/v1/deployments/<int:pk>/result/": {"status": "succeeded"},
}

PUBLIC = row(anonymous=200, people=200, tokens=200)
REGISTRY_WRITE = api(people=403, tokens=403, token_registry_write=400)
# Filing and deciding are for people; the pipeline starts and reports deployments.
PEOPLE_WRITE = api(people=400, tokens=403)
# The read API for reports: every person, and tokens with `read` (issue 17).
READ = api(people=200, tokens=403, token_read=200)
# Rule 10: the change's owner, an approver of the environment, or the pipeline.
MAY_ROLL_BACK = ("requester", "risk", "release", "platform")

# Administrators manage every webhook subscription; a token with webhooks:write those of its
# teams (the matrix's tokens act for Data Science, which the demo subscription names).
WEBHOOK_MANAGERS = api(people=403, tokens=403, admin=200, token_webhooks_write=200)

# route → method → persona → status.
EXPECTED: dict[str, dict[str, dict[str, int]]] = {
    "": {"GET": page()},
    "notifications/": {"GET": page()},
    "notifications/read/": {"POST": page(**dict.fromkeys(PEOPLE, 302))},
    "profile/": {"GET": page()},
    # Signing out everywhere needs the confirmation box ticked: an empty POST is a 400.
    "profile/sign-out-everywhere/": {"POST": page(**dict.fromkeys(PEOPLE, 400))},
    # Everyone has the page; an empty absence is a 400 for anyone (the service decides whose
    # absence one records). A cancel comes back to the page (302) with a message either way.
    "absences/": {"GET": page(), "POST": page(**dict.fromkeys(PEOPLE, 400))},
    "absences/<int:pk>/cancel/": {"POST": page(**dict.fromkeys(PEOPLE, 302))},
    "login/": {"GET": PUBLIC},
    # Single sign-on is off here (no OIDC_ISSUER); tests/oidc covers it switched on.
    "oidc/authenticate/": {"GET": row(anonymous=404, people=404, tokens=404)},
    "oidc/callback/": {"GET": row(anonymous=404, people=404, tokens=404)},
    "logout/": {"POST": row(anonymous=302, people=302, tokens=302)},
    "healthz": {"GET": PUBLIC},
    "readyz": {"GET": PUBLIC},
    # Prometheus scrapes with a metrics:read token; administrators may look in the browser.
    "metrics": {"GET": api(people=403, tokens=403, token_metrics_read=200, admin=200)},
    "admin/": {"GET": only(("admin",), others=302)},
    "audit/": {"GET": only(AUDIT_READERS)},
    "audit/objects/<str:object_type>/<str:object_id>/": {"GET": only(AUDIT_READERS)},
    "audit/export.csv": {"GET": only(AUDIT_READERS)},
    "audit/export.jsonl": {"GET": only(AUDIT_READERS)},
    # The key that verifies the signed checkpoints is published on purpose.
    "audit/public-key/": {"GET": PUBLIC},
    "audit/public-key.pem": {"GET": PUBLIC},
    "registry/": {"GET": page()},
    "registry/models/<slug:name>/": {"GET": page()},
    "registry/models/<slug:name>/versions/<str:version>/": {"GET": page()},
    "registry/datasets/": {"GET": page()},
    "registry/inventory/": {"GET": page()},
    # Documents (validation reports) are for signed-in people only.
    "registry/documents/<int:pk>/": {"GET": page()},
    "registry/inventory.csv": {"GET": page()},
    "registry/inventory.xlsx": {"GET": page()},
    # Pipelines fetch the helper and its digest with any valid token (docs/ci.md).
    "registry/ci/gatehouse_ci.py": {"GET": row(anonymous=SIGN_IN, people=200, tokens=200)},
    "registry/ci/gatehouse_ci.py.sha256": {"GET": row(anonymous=SIGN_IN, people=200, tokens=200)},
    "releases/waiting/": {"GET": page()},
    "releases/change-requests/": {"GET": page()},
    "releases/change-requests/new/": {"GET": page(), "POST": page()},
    "releases/change-requests/<str:number>/": {"GET": page()},
    "releases/change-requests/<str:number>/evidence.zip": {"GET": page()},
    "releases/change-requests/<str:number>/edit/": {
        "GET": only(("requester",)),
        "POST": only(("requester",)),
    },
    # Refusals come back as a message on the change request's page (302 either way); the
    # services' refusals are tested in tests/releases.
    # A refused move answers like the API, with the change's page and its message (issue 19):
    # the demo's change is in review, so its requester's submit is a 409 (not a draft), anyone
    # else's a 403; an empty cancel reason is a 400 for those who may cancel.
    "releases/change-requests/<str:number>/submit/": {
        "POST": page(**{**dict.fromkeys(PEOPLE, 403), "requester": 409})
    },
    "releases/change-requests/<str:number>/cancel/": {
        "POST": page(**{**dict.fromkeys(PEOPLE, 403), "requester": 400, "changemgr": 400})
    },
    # Model Risk concludes a validation; a refusal comes back to the model page as a message.
    "registry/models/<slug:name>/validations/": {"POST": page(**dict.fromkeys(PEOPLE, 302))},
    "registry/models/<slug:name>/validations/<int:pk>/conclude/": {
        "POST": page(**dict.fromkeys(PEOPLE, 302))
    },
    "registry/models/<slug:name>/findings/<int:pk>/close/": {
        "POST": page(**dict.fromkeys(PEOPLE, 302))
    },
    "releases/change-requests/<str:number>/sign-offs/<int:pk>/withdraw/": {
        "POST": page(**{**dict.fromkeys(PEOPLE, 403), "peer": 400})
    },
    # The signature page opens for the approvers the change waits for; others are sent back to
    # the change request with a message. An empty signature is a 400 for anyone.
    "releases/change-requests/<str:number>/sign/": {
        "GET": only(("risk", "release", "platform"), others=302),
        "POST": page(**dict.fromkeys(PEOPLE, 400)),
    },
    # Where the identity provider sends a signer back: without a signature of theirs waiting,
    # a message on the dashboard (tests/oidc/test_step_up.py).
    "releases/signature/returned/": {"GET": page(**dict.fromkeys(PEOPLE, 302))},
    "releases/freezes/": {"GET": page()},
    "releases/emergencies/": {"GET": page()},
    "releases/emergencies/new/": {"GET": page(), "POST": page()},
    "releases/environments/": {"GET": page()},
    "releases/environments/<str:name>/": {"GET": page()},
    "releases/environments/<str:name>/models/<str:model>/rollback/": {
        "POST": only(MAY_ROLL_BACK, status=302)
    },
    # Rule 14 flags are cleared by an approver of their environment or an administrator; the
    # demo's flag is in test, whose policy has no approval teams.
    "releases/unauthorised-changes/<int:pk>/review/": {"POST": only(("admin",), status=302)},
    "releases/deployments/<int:pk>/": {"GET": page()},
    "releases/metrics/": {"GET": page()},
    "releases/search/": {"GET": page()},
    "releases/calendar/": {"GET": page()},
    "releases/cab/": {"GET": page()},
    "releases/calendar/feeds/": {"GET": page()},
    # Everyone signed in has a calendar of their own to subscribe to (shown once: a 200).
    "releases/calendar/feeds/issue/": {"POST": page()},
    # The demo's feed is the requester's: only they revoke it; others are refused.
    "releases/calendar/feeds/<int:pk>/revoke/": {"POST": only(("requester",), status=302)},
    # The secret address is the credential: Outlook reads it without a session or a token.
    "releases/calendar/feeds/<str:token>.ics": {"GET": PUBLIC},
    # Standard changes (issue 18): templates are read by everyone signed in; anyone may propose
    # one or file under one (the services then ask who owns the model); a change manager or an
    # approver of an environment the template serves revokes it (a reason is required: back to
    # the page with the message).
    "releases/standard-templates/": {"GET": page()},
    "releases/standard-templates/new/": {"GET": page(), "POST": page()},
    "releases/standard-templates/<int:pk>/": {"GET": page()},
    "releases/standard-templates/<int:pk>/revoke/": {
        "POST": only(("risk", "release", "platform", "changemgr"), status=302)
    },
    "releases/standard-templates/<int:pk>/changes/new/": {"GET": page(), "POST": page()},
    "api/v1/whoami/": {"GET": api(people=200, tokens=200)},
    "api/v1/notifications/": {"GET": READ},
    "api/v1/audit/events/": {
        "GET": api(
            people=403, tokens=403, token_audit_read=200, **dict.fromkeys(AUDIT_READERS, 200)
        )
    },
    "api/v1/audit/verify/": {
        "GET": api(
            people=403, tokens=403, token_audit_read=200, **dict.fromkeys(AUDIT_READERS, 200)
        )
    },
    "api/v1/audit/export/": {
        "GET": api(
            people=403, tokens=403, token_audit_read=200, **dict.fromkeys(AUDIT_READERS, 200)
        )
    },
    "api/v1/datasets/": {"GET": api(people=200, tokens=200), "POST": REGISTRY_WRITE},
    "api/v1/models/": {"GET": api(people=200, tokens=200), "POST": REGISTRY_WRITE},
    # The inventory entry: read by all; written by the owner team, Model Risk and admins.
    "api/v1/models/<slug:name>/inventory/": {
        "GET": api(people=200, tokens=200),
        "POST": api(people=403, tokens=403, requester=200, peer=200, risk=200, admin=200),
    },
    "api/v1/inventory/": {"GET": api(people=200, tokens=200)},
    # Model Risk (Rita) opens validations and records findings: an empty body is a 400 for her.
    # The matrix's tokens act for Platform Operations and Data Science, not for Model Risk.
    "api/v1/models/<slug:name>/validations/": {
        "GET": api(people=200, tokens=200),
        "POST": api(people=403, tokens=403, risk=400),
    },
    "api/v1/models/<slug:name>/validations/<int:pk>/findings/": {
        "POST": api(people=403, tokens=403, risk=400)
    },
    # Concluding is the validator's signature in the browser: the API refuses everyone.
    "api/v1/models/<slug:name>/validations/<int:pk>/conclude/": {
        "POST": api(people=403, tokens=403)
    },
    # An empty body is a 400 for people; the matrix's tokens do not act for Model Risk.
    "api/v1/models/<slug:name>/findings/<int:pk>/close/": {"POST": api(people=400, tokens=403)},
    "api/v1/models/<slug:name>/versions/": {
        "GET": api(people=200, tokens=200),
        "POST": REGISTRY_WRITE,
    },
    "api/v1/models/<slug:name>/versions/<str:version>/": {"GET": api(people=200, tokens=200)},
    "api/v1/change-requests/": {"GET": READ, "POST": PEOPLE_WRITE},
    "api/v1/change-requests/<str:number>/": {"GET": api(people=200, tokens=200)},
    "api/v1/change-requests/<str:number>/evidence/": {
        "GET": api(people=200, tokens=403, token_audit_read=200)
    },
    "api/v1/change-requests/<str:number>/sign-offs/": {"GET": READ},
    "api/v1/gate/": {"POST": api(people=400, tokens=403, token_gate_read=400)},
    "api/v1/deployments/": {
        "GET": READ,
        "POST": api(people=400, tokens=403, token_deployments_write=400),
    },
    "api/v1/deployments/<int:pk>/": {"GET": READ},
    "api/v1/runs/": {"POST": api(people=400, tokens=403, token_runs_write=400)},
    # Only the pipeline or the person who started the deployment (none of the personas here).
    "api/v1/deployments/<int:pk>/result/": {
        "POST": api(people=403, tokens=403, token_deployments_write=200)
    },
    "api/v1/environments/<str:environment>/models/<str:name>/rollback/": {
        "POST": api(
            people=403,
            tokens=403,
            token_deployments_write=201,
            **dict.fromkeys(MAY_ROLL_BACK, 201),
        )
    },
    "api/v1/environments/<str:environment>/live/": {"GET": api(people=200, tokens=200)},
    # Without `q` an allowed caller is told what to type (400 query_missing).
    "api/v1/search/": {
        "GET": api(people=400, tokens=403, token_gate_read=400, token_audit_read=400)
    },
    "api/v1/environments/": {"GET": READ},
    "api/v1/environments/<str:environment>/": {"GET": READ},
    # Called by the platforms with their own secrets: no person or token gets past them.
    "api/v1/platforms/gitlab/deployments/": {"POST": row(anonymous=403, people=403, tokens=403)},
    "api/v1/platforms/github/events/": {"POST": row(anonymous=403, people=403, tokens=403)},
    # The cluster's API server with a gate:read token; an empty review is malformed (400).
    "api/v1/platforms/kubernetes/admission/": {
        "POST": api(people=401, tokens=403, token_gate_read=400)
    },
    "integrations/webhooks/": {"GET": only(("admin",))},
    "integrations/webhooks/<int:pk>/": {"GET": only(("admin",))},
    # The test message goes out at once (to a closed local port here); the answer comes back
    # as a message on the subscription's page.
    "integrations/webhooks/<int:pk>/test/": {"POST": only(("admin",), status=302)},
    "api/v1/webhooks/": {
        "GET": WEBHOOK_MANAGERS,
        "POST": api(people=403, tokens=403, admin=400, token_webhooks_write=400),
    },
    "api/v1/webhooks/<int:pk>/": {"GET": WEBHOOK_MANAGERS},
    "api/v1/webhooks/<int:pk>/rotate-secret/": {"POST": WEBHOOK_MANAGERS},
    "api/v1/webhooks/<int:pk>/deactivate/": {"POST": WEBHOOK_MANAGERS},
    "api/schema/": {"GET": PUBLIC},
    "api/docs/": {"GET": PUBLIC},
}


@dataclass
class Route:
    route: str
    name: str
    pattern: URLPattern

    def api_methods(self) -> set[str] | None:
        """The HTTP methods an API view implements (None for pages)."""
        view_class = getattr(self.pattern.callback, "view_class", None)
        if view_class is None or not issubclass(view_class, APIView):
            return None
        implemented = ("get", "post", "put", "patch", "delete")
        return {method.upper() for method in implemented if hasattr(view_class, method)}


def _walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or ""
            joined = f"{namespace}:{inner}" if namespace and inner else namespace or inner
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), joined)
        else:
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or ""
            yield Route(prefix + str(entry.pattern), name, entry)


def routes() -> list[Route]:
    """Every pattern of the root URL configuration; of the admin only its index (the admin is
    Django's own, staff-only as a whole, and has its own tests)."""
    return [
        route
        for route in _walk(get_resolver().url_patterns)
        if not route.route.startswith("admin/") or route.name == "admin:index"
    ]


@pytest.fixture
def demo(db) -> tuple[dict[str, str], dict[str, str]]:
    """The demo's data, a token per scope, and the values path parameters take."""
    call_command("seed_demo", stdout=io.StringIO())
    team = Team.objects.get(slug="platform-operations")
    # Like the demo's CD pipeline, the tokens act for Data Science, which owns the demo's models.
    granted = (Team.objects.get(slug="data-science"),)
    tokens = {
        f"token:{scope}": make_service_caller(
            team, f"matrix-{scope.replace(':', '-')}", [scope], granted_teams=granted
        ).secret
        for scope in Scope.values
    }
    # A prod change waiting for the approval teams, filed by the requester.
    change = (
        ChangeRequest.objects.filter(state="in_approval", environment__name="prod")
        .select_related("model_version__model")
        .order_by("pk")
        .first()
    )
    # A model that can be rolled back in prod, and the deployment a rollback would replace.
    prod = Environment.objects.get(name="prod")
    live = None
    for model in RegisteredModel.objects.order_by("name"):
        try:
            live, _ = rollback_plan(environment=prod, model=model)
            break
        except Conflict:
            continue
    event = AuditEvent.objects.filter(object_type__startswith="releases.").order_by("seq").first()
    flag = UnauthorisedChange.objects.order_by("pk").first()
    requester = get_user_model().objects.get(username="requester")
    feed = calendar_feed_issue(actor=requester, owner=requester)
    open_validation = Validation.objects.filter(concluded_at__isnull=True).first()
    # A Standard Webhooks subscription of Data Science, at a closed local port.
    webhook = webhook_subscription_create(
        actor=None,
        name="matrix hook",
        kind="standard",
        url="http://127.0.0.1:9/hook",
        event_types=["change_request.waiting"],
        team=granted[0],
    ).subscription
    values = {
        "change": change.number,
        "model": change.model_version.model.name,
        "version": change.model_version.version,
        "environment": "prod",
        "live_model": live.model.name,
        "deployment": str(live.pk),
        "flag": str(flag.pk),
        "sign_off": str(change.sign_offs.filter(voided_at__isnull=True).first().pk),
        "object_type": event.object_type,
        "object_id": event.object_id,
        "document": str(Document.objects.order_by("pk").first().pk),
        "finding": str(Finding.objects.order_by("pk").first().pk),
        "finding_model": Finding.objects.order_by("pk").first().validation.model.name,
        "calendar_feed": str(feed.feed.pk),
        "feed_token": feed.token,
        "absence": str(Absence.objects.order_by("pk").first().pk),
        "open_validation": str(open_validation.pk),
        "open_model": open_validation.model.name,
        "webhook": str(webhook.pk),
        "standard_template": str(StandardChangeTemplate.objects.order_by("pk").first().pk),
    }
    return tokens, values


def _url(route: Route, values: dict[str, str]) -> str:
    wanted = PARAMETERS.get(route.route, {})
    names = re.findall(r"<(?:\w+:)?(\w+)>", route.route)
    missing = [name for name in names if name not in wanted]
    assert not missing, f"PARAMETERS has no value for {missing} of {route.route!r}"
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[wanted[m.group(1)]], route.route)


def _ask(client: Client, method: str, url: str, *, route: Route, headers: dict) -> int:
    """One request in a transaction that is rolled back."""
    payload = PAYLOADS.get(route.route, {})
    with transaction.atomic():
        if method == "GET":
            response = client.get(url, headers=headers)
        elif route.route.startswith("api/"):
            response = client.post(
                url, json.dumps(payload), content_type="application/json", headers=headers
            )
        else:
            response = client.post(url, payload, headers=headers)
        transaction.set_rollback(True)
    return response.status_code


def _observe(route: Route, methods: list[str], tokens: dict, values: dict) -> dict:
    users = {user.username: user for user in get_user_model().objects.filter(username__in=PEOPLE)}
    url = _url(route, values)
    observed: dict[str, dict[str, int]] = {}
    for method in methods:
        observed[method] = {}
        for persona in PERSONAS:
            client = Client(raise_request_exception=False)
            headers = {}
            if persona in users:
                client.force_login(users[persona])
            elif persona in tokens:
                headers["Authorization"] = f"Bearer {tokens[persona]}"
            observed[method][persona] = _ask(client, method, url, route=route, headers=headers)
    return observed


def _differences(expected: dict, observed: dict) -> list[str]:
    return [
        f"{method} as {persona}: expected {expected[method][persona]}, got {status}"
        for method, statuses in observed.items()
        for persona, status in statuses.items()
        if expected[method].get(persona) != status
    ]


@pytest.mark.django_db
def test_every_url_answers_every_persona_as_the_table_says(demo):
    tokens, values = demo
    unlisted, wrong = [], []
    for route in routes():
        expected = EXPECTED.get(route.route)
        api_methods = route.api_methods()
        if expected is None:
            methods = sorted(api_methods or {"GET"})
            observed = _observe(route, methods, tokens, values)
            unlisted.append(f"{route.route!r} ({route.name}) answers now: {json.dumps(observed)}")
            continue
        if api_methods is not None and set(expected) != api_methods:
            wrong.append(
                f"{route.route}: the view answers {sorted(api_methods)}, the table "
                f"lists {sorted(expected)}"
            )
        observed = _observe(route, sorted(expected), tokens, values)
        wrong.extend(f"{route.route} {line}" for line in _differences(expected, observed))
    assert not unlisted, "URLs missing from the authorisation table:\n" + "\n".join(unlisted)
    assert not wrong, "Answers that differ from the authorisation table:\n" + "\n".join(wrong)


def test_the_table_names_only_urls_that_exist():
    existing = {route.route for route in routes()}
    assert set(EXPECTED) <= existing, sorted(set(EXPECTED) - existing)
    assert set(PARAMETERS) <= existing, sorted(set(PARAMETERS) - existing)
    assert set(PAYLOADS) <= existing, sorted(set(PAYLOADS) - existing)
