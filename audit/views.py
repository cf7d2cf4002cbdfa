"""Auditor pages: read-only, for people who can read the audit trail (`can_read_audit`)."""

import csv
import json
from collections.abc import Iterable, Iterator

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from audit import keys, selectors
from audit.chain import format_timestamp
from audit.export import export_lines
from audit.forms import EventFilterForm
from audit.models import AuditEvent
from audit.selectors import EventFilters
from portal.exceptions import DomainError
from portal.spreadsheets import safe_cell

CSV_COLUMNS = [
    "seq",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "environment",
    "data",
    "request_id",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
]
# Spreadsheets run cells that start with these as formulas; evidence must never execute.


def _require_reader(request: HttpRequest) -> None:
    if not selectors.can_read_audit(request.user):
        raise PermissionDenied(
            "Only auditors, change managers and administrators read the audit trail. Each "
            "change's own timeline is open from its page; an administrator makes you an auditor."
        )


def _filter_form(request: HttpRequest) -> tuple[EventFilterForm, EventFilters | None, int | None]:
    """The filters, or None when they do not parse: then nothing is shown rather than everything."""
    form = EventFilterForm(request.GET or None)
    if not form.is_bound:
        return form, EventFilters(), None
    if form.is_valid():
        return form, form.filters(), form.cleaned_data["cursor"]
    return form, None, None


def _banner_context(user) -> dict:
    verification = selectors.audit_last_verification(user=user)
    return {
        "last_verification": verification,
        "freshness": selectors.audit_freshness(user=user, verification=verification),
        "latest_checkpoint": selectors.audit_latest_checkpoint(user=user),
    }


@require_safe
def event_list(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    form, filters, cursor = _filter_form(request)
    if filters is None:
        page, query = selectors.EventPage(events=[], next_cursor=None), {}
    else:
        page = selectors.audit_event_page(user=request.user, filters=filters, cursor=cursor)
        query = filters.as_query()
    next_url = f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    return render(
        request,
        "audit/event_list.html",
        {
            "form": form,
            "page": page,
            "next_url": next_url,
            "first_url": f"?{urlencode(query)}" if cursor else "",
            "export_query": urlencode(query),
            "about_label": selectors.describe_about(filters.about)
            if filters and filters.about
            else "",
            **_banner_context(request.user),
        },
    )


@require_safe
def object_timeline(request: HttpRequest, object_type: str, object_id: str) -> HttpResponse:
    """Everything that happened to one object, newest first, even after the object is gone."""
    _require_reader(request)
    cursor = request.GET.get("cursor", "")
    filters = EventFilters(object_type=object_type, object_id=object_id)
    page = selectors.audit_event_page(
        user=request.user, filters=filters, cursor=int(cursor) if cursor.isdigit() else None
    )
    return render(
        request,
        "audit/object_timeline.html",
        {
            "object_type": object_type,
            "object_id": object_id,
            "object_repr": page.events[0].object_repr if page.events else "",
            "page": page,
            "next_url": f"?cursor={page.next_cursor}" if page.next_cursor else "",
            "export_query": urlencode(filters.as_query()),
            **_banner_context(request.user),
        },
    )


def _row(event: AuditEvent) -> list[str]:
    values = {
        **{column: getattr(event, column) for column in CSV_COLUMNS},
        "occurred_at": format_timestamp(event.occurred_at),
        "data": json.dumps(event.data, ensure_ascii=False, sort_keys=True),
        "ip": event.ip or "",
    }
    return [safe_cell(values[column]) for column in CSV_COLUMNS]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        yield writer.writerow(_row(event))


@require_safe
def export_csv(request: HttpRequest) -> HttpResponse:
    """The filtered events for reading and spreadsheets; not evidence (it is not a chain)."""
    _require_reader(request)
    form, filters, _cursor = _filter_form(request)
    if filters is None:
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    events = selectors.audit_events_stream(user=request.user, filters=filters)
    response = StreamingHttpResponse(_csv_lines(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
    return response


@require_safe
def export_jsonl(request: HttpRequest) -> HttpResponse:
    """The signed export (`audit.export`) of the filters' time range: every event between the
    first and last one in it, so that it verifies offline. The other filters narrow what the
    page shows, not the evidence."""
    _require_reader(request)
    form, filters, _cursor = _filter_form(request)
    if filters is None:
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    try:
        lines = export_lines(since=filters.since, until=filters.until)
    except DomainError as error:
        return HttpResponse(error.detail, status=error.status_code, content_type="text/plain")
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.jsonl"'
    return response


@login_not_required
@require_safe
def public_key(request: HttpRequest) -> HttpResponse:
    """Published so anyone holding an export can check its checkpoints against the portal's key;
    retired keys are listed too, for the checkpoints they signed."""
    return render(
        request,
        "audit/public_key.html",
        {
            "public_key_pem": keys.public_key_pem(),
            "key_id": keys.current_key_id(),
            "retired_keys": [key for key in keys.published_keys() if not key["current"]],
        },
    )


@login_not_required
@require_safe
def public_key_pem(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(keys.public_key_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'inline; filename="gatehouse-audit-public-key.pem"'
    return response
