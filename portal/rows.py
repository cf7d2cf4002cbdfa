"""Rows written and read on the hot paths (the gate check, the audit append, bearer tokens)
with SQL put together once per process instead of compiled by the ORM on every call.

Compiling a one-row INSERT or a keyed SELECT costs Django about 0.3 ms of Python each time,
more than the database takes to run it (measured with cProfile on the gate check). Values still
go through each field's own conversion (`get_db_prep_save`, `from_db_value`), so the rows are
the ones `save()` and a queryset would write and read."""

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model

INSERT_SQL = "INSERT INTO {table} ({columns}) VALUES ({values}){returning}"


@cache
def _insert_sql(model: type[Model], vendor: str, with_pk: bool) -> tuple[str, tuple, bool]:
    meta = model._meta
    fields = tuple(
        field
        for field in meta.local_concrete_fields
        if (with_pk or field is not meta.auto_field) and not field.generated
    )
    quote = connection.ops.quote_name
    returning = (
        not with_pk
        and meta.auto_field is not None
        and connection.features.can_return_columns_from_insert
    )
    sql = INSERT_SQL.format(
        table=quote(meta.db_table),
        columns=", ".join(quote(field.column) for field in fields),
        values=", ".join(["%s"] * len(fields)),
        returning=f" RETURNING {quote(meta.pk.column)}" if returning else "",
    )
    return sql, fields, returning


# SQL and its parameters.
Statement = tuple[str, list[Any]]


def row_insert(instance: Model, *, then: Statement | None = None) -> Model:
    """Insert `instance` as `save(force_insert=True)` would (no signals: the models written here
    have no receivers), setting its primary key when the database chooses it. `then` runs right
    after it, in the same round trip on PostgreSQL (a row whose key is already set)."""
    model = type(instance)
    sql, fields, returning = _insert_sql(model, connection.vendor, instance.pk is not None)
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        if then is not None and connection.vendor == "postgresql" and instance.pk is not None:
            cursor.execute(f"{sql}; {then[0]}", [*values, *then[1]])
            then = None
        else:
            cursor.execute(sql, values)
        if returning:
            instance.pk = cursor.fetchone()[0]
        elif instance.pk is None:
            instance.pk = cursor.lastrowid
        if then is not None:
            cursor.execute(*then)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _converters(model: type[Model], names: tuple[str, ...], vendor: str) -> tuple:
    """Per field: its column and the backend's and the field's own conversions of a database
    value, as a queryset applies them (SQLite hands back text for datetimes, integers for
    booleans)."""
    converters = []
    for name in names:
        field = model._meta.get_field(name)
        column = field.get_col(model._meta.db_table)
        chain = [*connection.ops.get_db_converters(column)]
        if hasattr(field, "from_db_value"):
            chain.append(field.from_db_value)
        converters.append((column, tuple(chain)))
    return tuple(converters)


def instance_from_row(
    model: type[Model], names: tuple[str, ...], values: list[Any] | tuple[Any, ...]
) -> Model:
    """A model instance from raw column values in the order of `names` (attribute names); the
    fields left out load on first access, as with `only()`."""
    converted = []
    for value, (column, chain) in zip(
        values, _converters(model, names, connection.vendor), strict=True
    ):
        for convert in chain:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, list(names), converted)
