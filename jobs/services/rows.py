"""Many rows of one model in one executemany, the SQL compiled once per process.

Django's bulk_create compiles its SQL value by value on every call: for the
worker's batches of attempts and the web's group commits that was most of the
insert's time (cProfile), and inside a transaction it holds SQLite's one write
lock the while. Here the values are converted first and the statement is cached.
"""

from functools import lru_cache

from django.db import connections, models


def insert_rows(model, objects: list, *, using: str, upsert_on: tuple = ()) -> None:
    """INSERT the objects (their auto primary key left to the database).

    `upsert_on`: the fields of a unique constraint; a row that clashes on them is
    overwritten with the new values (ON CONFLICT ... DO UPDATE, SQLite and
    PostgreSQL alike) instead of failing the whole batch.
    """
    if not objects:
        return
    connection = connections[using]
    columns = _columns(model)
    rows = [
        [
            value
            if value is None or type(value) is plain
            else f.get_db_prep_save(value, connection)
            for f, plain, value in ((f, p, getattr(obj, f.attname)) for f, p in columns)
        ]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_insert_sql(model, using, upsert_on), rows)
    for obj in objects:
        obj._state.adding, obj._state.db = False, using


@lru_cache(maxsize=16)
def _columns(model) -> tuple:
    """(field, the Python type it sends to the database unchanged, or None).

    Django's own char, text, integer and boolean fields prepare a str, int or bool
    value by returning it: calling get_db_prep_save on each (four calls deep) was
    most of a 1,000-message batch's insert (cProfile). A subclass that changes the
    preparation, and every other field, goes through get_db_prep_save.
    """
    return tuple((f, _PLAIN.get(type(f))) for f in _fields(model))


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


def _fields(model) -> list:
    auto = model._meta.auto_field
    return [f for f in model._meta.concrete_fields if f is not auto]


@lru_cache(maxsize=16)
def _insert_sql(model, alias: str, upsert_on: tuple) -> str:
    quote = connections[alias].ops.quote_name
    fields = _fields(model)
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    if upsert_on:
        columns = [model._meta.get_field(name).column for name in upsert_on]
        updated = [f.column for f in fields if f.column not in columns]
        sql += " ON CONFLICT ({}) DO UPDATE SET {}".format(
            ", ".join(map(quote, columns)),
            ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in updated),
        )
    return sql
