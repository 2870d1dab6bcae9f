"""Inserting a model instance with one statement made once per model.

The ORM compiles an INSERT afresh for every save: for a job's thirty columns that costs
more CPU than the database spends storing the row (bench/README.md, "Profile"). `insert`
sends a statement built once per model, with every value prepared by its own field exactly
as the ORM's insert prepares it (`pre_save`, then `get_db_prep_save`). Like the ORM's bulk
operations it sends no pre_save/post_save signals, so it is for models none listen to.
"""

import functools

from django.db import connection


@functools.cache
def _insert_sql(model, vendor: str) -> str:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from the model


def insert_values(instance, fields) -> list:
    """`fields`' values of `instance`, prepared for an INSERT exactly as the ORM's are."""
    return [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]


def mark_saved(instance) -> None:
    """Tell the ORM that `instance` now has its row, as its own save would."""
    instance._state.adding = False
    instance._state.db = connection.alias


def insert(instance) -> None:
    """INSERT `instance`, whose primary key is already set, and mark it saved."""
    if instance.pk is None:
        raise ValueError("insert() needs the primary key set (no database-generated ids)")
    values = insert_values(instance, instance._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(type(instance), connection.vendor), values)
    mark_saved(instance)
