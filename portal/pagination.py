"""What every read list of the API shares: a cursor, not a page number (a record filed between
two calls is neither repeated nor skipped), and a query string that is checked, not guessed at.

A report that misspells a filter, sends a date that does not exist or a cursor that is not ours
gets 400 with `{code, detail, fields}`, never a silently wider answer or a 404."""

import re

from django.core.exceptions import FieldDoesNotExist, ValidationError
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from portal.exceptions import InvalidQuery

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
PAGING = {"cursor", "page_size"}


class ReadCursor(CursorPagination):
    """Newest first by id (unique and never changed, so a cursor always finds its place).
    Subclasses name another unique, unchanging ordering, and the characters its position takes.

    A cursor is written plainly, `<offset><f|r><position>` (`0f1207`: forward from id 1207), so
    the schema can state its exact pattern and every cursor of that pattern is one the list can
    follow."""

    ordering = "-id"
    position_pattern = "[0-9]{1,18}"
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    invalid_cursor_message = "This cursor is not one this list gave out; follow `next`."

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidQuery(
                f"page_size takes 1 to {self.max_page_size}.",
                fields={"page_size": [f"A whole number from 1 to {self.max_page_size}."]},
            )
        return int(raw)

    @classmethod
    def cursor_pattern(cls) -> str:
        return f"^[0-9]{{1,4}}[fr](?:{cls.position_pattern})?$"

    def encode_cursor(self, cursor: Cursor) -> str:
        position = "" if cursor.position is None else cursor.position
        token = f"{cursor.offset}{'r' if cursor.reverse else 'f'}{position}"
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def decode_cursor(self, request: Request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        if not re.fullmatch(self.cursor_pattern(), raw):
            raise self._invalid()
        offset, reverse, position = re.fullmatch(r"([0-9]+)([fr])(.*)", raw).groups()
        if position:
            self._check_position(position)
        return Cursor(
            offset=min(int(offset), self.offset_cutoff),
            reverse=reverse == "r",
            position=position or None,
        )

    def _check_position(self, position: str) -> None:
        """The position is compared with the ordering's column: one that column cannot hold
        would otherwise fail in the database."""
        first = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        name = first.lstrip("-")
        name = "id" if name == "pk" else name
        try:
            field = self.model._meta.get_field(name)
            if "\x00" in position:
                raise ValidationError("NUL")
            value = field.to_python(position)
            if isinstance(value, int) and not 0 <= value < 2**63:
                raise ValidationError("out of range")
        except (FieldDoesNotExist, ValidationError):
            raise self._invalid() from None

    def _invalid(self) -> InvalidQuery:
        return InvalidQuery(
            self.invalid_cursor_message,
            fields={"cursor": [self.invalid_cursor_message]},
            code="invalid_cursor",
        )


class OldestFirst(ReadCursor):
    """In the order the records were made (sign-offs, as they were given)."""

    ordering = "id"


def query_filters(filters: type[serializers.Serializer], request: Request) -> dict:
    """The validated filters of a list; a parameter the list does not know is refused, so a
    misspelt `updated_snice` is not a list of everything."""
    params = request.query_params
    problems: dict[str, list[str]] = {
        name: ["Unknown filter."]
        for name in params
        if name not in filters().fields and name not in PAGING
    }
    problems.update(
        {name: ["Give this filter once."] for name in params if len(params.getlist(name)) > 1}
    )
    checked = filters(data={name: params[name] for name in params if name not in PAGING})
    if not checked.is_valid():
        problems.update(
            {name: [str(m) for m in messages] for name, messages in checked.errors.items()}
        )
        for name in checked.errors:
            field = checked.fields.get(name)
            if isinstance(field, serializers.ChoiceField):
                problems[name].append("It takes: " + ", ".join(map(str, field.choices)) + ".")
    if problems:
        raise InvalidQuery(
            "Some filters cannot be used: " + ", ".join(sorted(problems)) + ".", fields=problems
        )
    return dict(checked.validated_data)


def paging_parameters(paginator: type[ReadCursor] = ReadCursor) -> list[OpenApiParameter]:
    """The query parameters of a list paged by `paginator`, with the values it takes."""
    return [
        OpenApiParameter(
            "cursor",
            {"type": "string", "pattern": paginator.cursor_pattern()},
            description="From `next` or `previous`; anything else is 400 invalid_cursor.",
        ),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            description=f"1 to {MAX_PAGE_SIZE}; {PAGE_SIZE} by default; else 400 invalid_filter.",
        ),
    ]


PAGING_PARAMETERS = paging_parameters()


def page_of(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """The schema of one page of `item`s."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
