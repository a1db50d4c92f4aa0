"""Rows of one model written and read with the SQL built once per process.

Building a statement is most of a small query's CPU in Django (cProfile): on
every call bulk_create compiles its SQL value by value, a queryset compiles its
WHERE, RawQuerySet looks up each column's converters. The worker's batches, the
web's group commits and the job-status reads pay that per request; here the
statement and the converters are kept, and values are converted before a
transaction opens (SQLite's one write lock is held for the statement alone).
"""

import uuid
from contextlib import nullcontext
from datetime import datetime
from functools import lru_cache
from operator import attrgetter

from django.conf import settings
from django.db import connections, models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from jobs.jsontext import column_text, column_texts, column_value


def insert_rows(model, objects: list, *, using: str, upsert_on: tuple = ()) -> None:
    """INSERT the objects (their auto primary key left to the database): model
    instances, or anything with their fields' attnames (a namedtuple costs a
    tenth of a model instance to build).

    `upsert_on`: the fields of a unique constraint; a row that clashes on them is
    overwritten with the new values (ON CONFLICT ... DO UPDATE, SQLite and
    PostgreSQL alike) instead of failing the whole batch.
    """
    if not objects:
        return
    connection = connections[using]
    columns = _columns(model)
    if len(objects) < _COLUMNWISE_FROM:
        rows = [
            [_prepared_value(read(obj), field, plain, connection)
             for read, field, plain in columns]
            for obj in objects
        ]  # fmt: skip
        literals = (None,) * len(columns)
    else:
        # Column by column (each read with one attrgetter in C), rows zipped in C.
        prepared = [
            _prepare_column(list(map(read, objects)), field, plain, connection)
            for read, field, plain in columns
        ]
        literals = tuple(map(_constant_literal, prepared))
        bound = [c for c, lit in zip(prepared, literals, strict=True) if lit is None]
        rows = list(zip(*bound, strict=True))
    with connection.cursor() as cursor:
        cursor.executemany(_insert_sql(model, using, upsert_on, literals), rows)
    for obj in objects:
        if isinstance(obj, models.Model):
            obj._state.adding, obj._state.db = False, using


# Fewer rows than this are prepared value by value: a column's passes cost more
# than they save on a group commit of a few requests.
_COLUMNWISE_FROM = 16


def _prepare_column(values: list, field, plain, connection) -> list:
    """Each row's value in one column as the ORM would send it
    (field.get_db_prep_save): the four calls deep of Django's preparation were
    most of a 1,000-message batch's insert (py-spy). A column whose values all
    have the type the field sends unchanged is sent as it is (one pass in C to
    find out), UUIDs and dicts take the field's own last step directly, and each
    distinct time is prepared once (a batch's rows share their creation and due
    times)."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds <= {plain} or (plain is str and all(issubclass(k, str) for k in kinds)):
        return values  # a choices enum member too: Django's CharField sends it so
    if kinds == {uuid.UUID} and type(field) is models.UUIDField:
        if connection.features.has_native_uuid_field:
            return values
        return [None if value is None else value.hex for value in values]
    if kinds <= _JSON_CONTAINERS and type(field) is models.JSONField:
        if connection.vendor == "sqlite" and field.encoder is None:
            return column_texts(values)
        return [
            None if v is None else _json_value(v, field, connection) for v in values
        ]
    # Times (a batch's rows share a few) and the rest: each distinct value once.
    if all(issubclass(kind, _HASHABLE) for kind in kinds):
        memo = {value: _prepared_value(value, field, plain, connection)
                for value in set(values)}  # fmt: skip
        return list(map(memo.__getitem__, values))
    return [_prepared_value(value, field, plain, connection) for value in values]


_HASHABLE = (datetime, str, int, float, uuid.UUID)


def _constant_literal(values: list) -> str | None:
    """The SQL literal of a column whose every value is NULL, '' or 0, else None.

    A new job's nine delivery and webhook columns start so: written into the
    statement, they are not bound per row (a third of a batch's parameters; with
    them, 504 M -> 488 M instructions a batch of 1,000, callgrind).
    """
    first = values[0]
    if first is None:
        return "NULL" if values.count(None) == len(values) else None
    kind = type(first)
    if (kind is str and first == "") or (kind is int and first == 0):
        # count() compares by ==: False and 0.0 equal 0, so the types are checked.
        if values.count(first) == len(values) and set(map(type, values)) == {kind}:
            return "''" if kind is str else "0"
    return None


def _prepared_value(value, field, plain, connection):
    kind = type(value)
    if value is None or kind is plain or (plain is str and isinstance(value, str)):
        return value
    if kind is datetime:
        return _prepared_time(value, field, connection)
    if kind is uuid.UUID and type(field) is models.UUIDField:
        return value if connection.features.has_native_uuid_field else value.hex
    if kind in _JSON_CONTAINERS and type(field) is models.JSONField:
        return _json_value(value, field, connection)
    return field.get_db_prep_save(value, connection)


_JSON_CONTAINERS = frozenset({dict, list})


def _json_value(value, field, connection):
    """field.get_db_prep_save(value) for a dict or list: on SQLite, the column's
    text written by orjson (jobs.jsontext, 11 times Django's json.dumps);
    elsewhere (PostgreSQL's jsonb adapter), Django's last step."""
    if connection.vendor == "sqlite" and field.encoder is None:
        return column_text(value)
    return connection.ops.adapt_json_value(value, field.encoder)


def _prepared_time(value: datetime, field, connection):
    """field.get_db_prep_save(value) for an aware time: on SQLite, Django's last
    step (adapt_datetimefield_value: naive in the connection's zone, str) taken
    directly: the three calls above it were most of an attempt row's insert."""
    if (
        connection.vendor == "sqlite"
        and type(field) is models.DateTimeField
        and value.utcoffset() is not None
        and settings.USE_TZ
    ):
        return str(value.astimezone(connection.timezone).replace(tzinfo=None))
    return field.get_db_prep_save(value, connection)


@lru_cache(maxsize=16)
def _columns(model) -> tuple:
    """Per inserted column: (what reads its value off an object, the field, the
    Python type the field sends to the database unchanged, or None).

    Django's own char, text, integer and boolean fields prepare a str, int or bool
    value by returning it. A subclass that changes the preparation, and every
    other field, goes through get_db_prep_save.
    """
    return tuple(
        (attrgetter(f.attname), f, _PLAIN.get(type(f))) for f in _fields(model)
    )


_PLAIN = {
    models.CharField: str,
    models.TextField: str,
    models.EmailField: str,
    models.URLField: str,
    models.SlugField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.BooleanField: bool,
}


def new_instance(model, values: dict):
    """model(**values), unsaved: `values` by attname, the other fields their
    defaults. Without init signal receivers, without Model.__init__ (which sends
    them and sets each field in turn: most of building a batch's new jobs)."""
    return instance_builder(model)(values)


def instance_builder(model):
    """new_instance for many instances: whether init signals have receivers is
    looked up once (two calls deep into the signals, per job of a batch)."""
    if _has_init_receivers(model):
        return lambda values: model(**values)
    constants, factories = _defaults(model)

    def build(values: dict):
        instance = model.__new__(model)
        instance.__dict__.update(constants)
        for attname, factory in factories:
            if attname not in values:
                instance.__dict__[attname] = factory()
        instance.__dict__.update(values)
        instance._state = ModelState()
        return instance

    return build


@lru_cache(maxsize=16)
def _defaults(model) -> tuple[dict, tuple]:
    """The fields' defaults as Model.__init__ sets them: the constant ones
    ({attname: value}) and the callable ones ((attname, callable), called per
    instance: a dict or a uuid4 must not be shared)."""
    constants, factories = {}, []
    for field in model._meta.concrete_fields:
        if field.has_default() and callable(field.default):
            factories.append((field.attname, field.default))
        else:
            constants[field.attname] = field.get_default()
    return constants, tuple(factories)


def _fields(model) -> list:
    auto = model._meta.auto_field
    return [f for f in model._meta.concrete_fields if f is not auto]


@lru_cache(maxsize=64)
def _insert_sql(model, alias: str, upsert_on: tuple, literals: tuple) -> str:
    """`literals`: per column, the SQL literal written in place of its parameter,
    or None (bound)."""
    quote = connections[alias].ops.quote_name
    fields = _fields(model)
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join("%s" if literal is None else literal for literal in literals),
    )
    if upsert_on:
        columns = [model._meta.get_field(name).column for name in upsert_on]
        updated = [f.column for f in fields if f.column not in columns]
        sql += " ON CONFLICT ({}) DO UPDATE SET {}".format(
            ", ".join(map(quote, columns)),
            ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in updated),
        )
    return sql


def any_row(model, *, using: str) -> bool:
    """Whether the model's table has a row (queryset.exists(), without compiling
    the query on every call: the worker asks on every claim)."""
    with connections[using].cursor() as cursor:
        cursor.execute(_any_row_sql(model, using))
        return cursor.fetchone() is not None


@lru_cache(maxsize=16)
def _any_row_sql(model, alias: str) -> str:
    table = connections[alias].ops.quote_name(model._meta.db_table)
    return f"SELECT 1 FROM {table} LIMIT 1"


def update_where_in(model, changes: dict, where_in: list, *, using: str) -> None:
    """UPDATE the rows whose pk is in `where_in` (field name -> new value): the
    ORM's filter(pk__in=...).update(...) without building the query each time."""
    if not where_in:
        return
    sql, params = _update_by_pk(model, changes, (), where_in, connections[using])
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def _update_by_pk(model, changes: dict, increments: tuple, where_in: list, connection):
    """The statement UPDATE … SET … WHERE pk IN (…) and its parameters: `changes`
    set to their values (prepared as the ORM prepares them), `increments` plus 1."""
    meta, quote = model._meta, connection.ops.quote_name
    column = {
        name: quote(meta.get_field(name).column) for name in [*changes, *increments]
    }
    set_sql = [f"{column[name]} = %s" for name in changes]
    set_sql += [f"{column[name]} = {column[name]} + 1" for name in increments]
    sql = "UPDATE {} SET {} WHERE {} IN ({})".format(
        quote(meta.db_table),
        ", ".join(set_sql),
        quote(meta.pk.column),
        ", ".join(["%s"] * len(where_in)),
    )
    params = [
        meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in changes.items()
    ]
    params += [meta.pk.get_db_prep_value(pk, connection) for pk in where_in]
    return sql, params


def update_returning(
    model,
    changes: dict,
    increments: tuple,
    where_in: list,
    where_status: list,
    returning: tuple,
    *,
    using: str,
    lock=nullcontext,
) -> list:
    """UPDATE rows by primary key and status, and read them back in the same
    statement (RETURNING: PostgreSQL, SQLite 3.35+), as model instances holding the
    `returning` fields only.

    `changes`: field name -> new value; `increments`: fields to add 1 to. The
    rows are those whose pk is in `where_in` and status in `where_status`. One
    statement where the ORM needs an UPDATE and a SELECT, and no query building:
    for the worker, that was half the cost of starting a batch (cProfile).
    `lock()` is held while the statement runs (fetch_models).
    """
    if not where_in:
        return []
    returning = tuple(returning)
    if _has_init_receivers(model):
        known, read = {}, returning
    else:
        # What was set is not read back: the instances get the values given
        # (converting the rows' times and ids was a third of a worker's claim).
        known = {
            model._meta.get_field(name).attname: value
            for name, value in changes.items()
            if name in returning
        }
        read = tuple(name for name in returning if name not in changes)
    connection = connections[using]
    quote = connection.ops.quote_name
    sql, params = _update_by_pk(model, changes, increments, where_in, connection)
    given_pks = dict(zip(params[len(params) - len(where_in) :], where_in, strict=True))
    fields = _returned(model, read)
    # SQLite's planner, given `status IN (…)` beside `pk IN (…)`, walks the
    # (status, created_at) index over every queued row instead of looking up the
    # pks: 5 ms rather than 0.3 ms for 100 claims at 20,000 queued. A unary + makes
    # the column unusable for an index (SQLite's documented way to steer it).
    status = quote(model._meta.get_field("status").column)
    if connection.vendor == "sqlite":
        status = "+" + status
    sql += " AND {} IN ({}) RETURNING {}".format(
        status,
        ", ".join(["%s"] * len(where_status)),
        ", ".join(quote(f.column) for f in fields),
    )
    params += list(where_status)
    return fetch_models(
        model,
        sql,
        params,
        read,
        using=using,
        known=known,
        given_pks=given_pks,
        lock=lock,
    )


def fetch_models(
    model,
    sql: str,
    params: list,
    fields: tuple = (),
    *,
    using: str,
    known: dict | None = None,
    given_pks: dict | None = None,
    lock=nullcontext,
):
    """Run SQL whose rows are `fields` of `model` (names; all its columns if
    empty), in the model's field order, and make them instances as the ORM
    would: Django's converters per column (looked up once per process: a
    RawQuerySet looks them up on every query, a third of a job-status read),
    then Model.from_db.

    `known`: attname -> value, set on every instance (fields the SQL did not
    read; only for a model without init signal receivers). `given_pks`: the
    database's value of a pk -> the object to use for it, not a conversion.
    `lock()`: held while the statement runs, not while its rows are converted (a
    writer's turn, jobs.writelock: the worker's other writer waits on it)."""
    fields = fields or tuple(f.name for f in model._meta.concrete_fields)
    with lock(), connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converters = _converters(model, fields, using)
    returned = _returned(model, fields)
    names = [f.attname for f in returned]
    pk_at = names.index(model._meta.pk.attname) if model._meta.pk in returned else None
    given_pks = given_pks or {}
    instances = []
    for row in rows:
        values = list(row)
        for index, convert in converters:
            if index == pk_at and values[index] in given_pks:
                values[index] = given_pks[values[index]]
            else:
                values[index] = convert(values[index])
        instance = _loaded(model, using, names, values)
        if known:
            instance.__dict__.update(known)
        instances.append(instance)
    return instances


def _loaded(model, using: str, names: list, values: list):
    """model.from_db(using, names, values) for a model without init signal
    receivers: Model.__init__ sends pre_init and post_init and sets each field in
    turn, most of making a worker's jobs (cProfile); the fields not read stay
    deferred (loaded on first access), as from_db leaves them."""
    if _has_init_receivers(model):
        return model.from_db(using, names, values)
    instance = model.__new__(model)
    instance.__dict__.update(zip(names, values, strict=True))
    instance._state = ModelState()
    instance._state.adding, instance._state.db = False, using
    return instance


def _has_init_receivers(model) -> bool:
    return pre_init.has_listeners(model) or post_init.has_listeners(model)


@lru_cache(maxsize=16)
def _returned(model, returning: tuple) -> tuple:
    """The fields named, in the model's order (what Model.from_db expects)."""
    wanted = {model._meta.get_field(name) for name in returning}
    return tuple(f for f in model._meta.concrete_fields if f in wanted)


@lru_cache(maxsize=16)
def _converters(model, returning: tuple, alias: str) -> tuple:
    """Per returned column, what Django's compiler would apply to its value
    (the backend's and the field's from_db_value), as one function."""
    connection = connections[alias]
    found = []
    for index, field in enumerate(_returned(model, returning)):
        column = field.get_col(model._meta.db_table)
        steps = connection.ops.get_db_converters(column) + field.get_db_converters(
            connection
        )
        if _plain_json(field) and steps == [field.from_db_value]:
            found.append((index, column_value))  # its JSON read by orjson
        elif steps:
            found.append((index, _chain(steps, column, connection)))
    return tuple(found)


def _plain_json(field) -> bool:
    return type(field) is models.JSONField and field.decoder is None


def _chain(steps, column, connection):
    def convert(value):
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert
