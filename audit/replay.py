"""The trail replayed against the tables (rule 17): the shared part of reconciliation.

Each app that owns rows replays the events its services write into what each row should hold
now (`Expected`), then reads the rows and lists every field the trail does not explain
(`Discrepancy`). Events are streamed in `seq` order, a chunk at a time: memory grows with the
number of objects, never with the number of events.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from audit.models import AuditEvent
from audit.services import to_json_value

STREAM_CHUNK = 2000
# What a discrepancy shows when one side has nothing: no row, or no event behind a row.
NO_ROW = "(no row)"
NO_EVENT = "(no event)"
EXISTS = "exists"


@dataclass(frozen=True)
class TrailEvent:
    seq: int
    action: str
    object_type: str
    object_id: str
    actor_kind: str
    actor_id: str
    environment: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Discrepancy:
    """One field of one row that the trail does not explain. `seq` is the last event the
    expectation comes from (None for a row no event created)."""

    object_type: str
    object_id: str
    field: str
    expected: str
    found: str
    seq: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.object_type, self.object_id, self.field


@dataclass
class Expected:
    """What the trail says one row holds: field → value, and the last event that said so.
    `exists` False means the trail recorded the row's removal."""

    fields: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    exists: bool = True

    def set(self, event: TrailEvent, **values: Any) -> None:
        self.fields.update(values)
        self.seq = event.seq


def trail_events(*, actions: Iterable[str]) -> Iterator[TrailEvent]:
    """The events of `actions`, oldest first, streamed a chunk at a time."""
    columns = (
        "seq",
        "action",
        "object_type",
        "object_id",
        "actor_kind",
        "actor_id",
        "environment",
        "data",
    )
    rows = (
        AuditEvent.objects.filter(action__in=list(actions))
        .order_by("seq")
        .values_list(*columns)
        .iterator(chunk_size=STREAM_CHUNK)
    )
    for row in rows:
        yield TrailEvent(*row)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if isinstance(value, str) else None


def same(expected: Any, found: Any) -> bool:
    """Equal as the trail records values: datetimes as instants to the millisecond (the
    precision of an event's JSON), everything else as plain JSON."""
    if isinstance(expected, datetime) or isinstance(found, datetime):
        first, second = _moment(expected), _moment(found)
        if first is None or second is None:
            return first is second
        return abs((first - second).total_seconds()) < 0.001
    return to_json_value(expected) == to_json_value(found)


def _shown(value: Any) -> str:
    plain = to_json_value(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def compare(
    *,
    object_type: str,
    expected: dict[str, Expected],
    rows: Iterable[tuple[str, dict[str, Any]]],
    missing_rows_matter: bool = True,
) -> list[Discrepancy]:
    """Every field of `rows` ((id, field → value), streamed) that `expected` does not explain:
    a row with no event, a field with another value, and (where `missing_rows_matter`) a row
    the trail says exists and the table lacks."""
    found_ids = set()
    discrepancies = []
    for object_id, values in rows:
        found_ids.add(object_id)
        trail = expected.get(object_id)
        if trail is None or not trail.exists:
            discrepancies.append(
                Discrepancy(
                    object_type,
                    object_id,
                    EXISTS,
                    NO_EVENT if trail is None else "removed",
                    "row present",
                    trail.seq if trail else None,
                )
            )
            continue
        for name, value in trail.fields.items():
            if name in values and not same(value, values[name]):
                discrepancies.append(
                    Discrepancy(
                        object_type, object_id, name, _shown(value), _shown(values[name]), trail.seq
                    )
                )
    if missing_rows_matter:
        for object_id, trail in expected.items():
            if trail.exists and object_id not in found_ids:
                discrepancies.append(
                    Discrepancy(object_type, object_id, EXISTS, "present", NO_ROW, trail.seq)
                )
    return discrepancies
