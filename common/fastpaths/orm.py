"""Inserting and reading a model's row with statements made once per model.

The ORM compiles an INSERT afresh for every save: for a job's thirty columns that costs
more CPU than the database spends storing the row (bench/README.md, "Profile"). `insert`
sends a statement built once per model, with every value prepared by its own field exactly
as the ORM's insert prepares it (`pre_save`, then `get_db_prep_save`). Like the ORM's bulk
operations it sends no pre_save/post_save signals, so it is for models none listen to.

Reading is the same trade: the ORM's query compiler, and even QuerySet.raw()'s column
mapping, cost several times what the database spends on a one-row query. `RowReader` sends
a SELECT of every concrete column made once per model and turns the row into an instance
with the converters the ORM itself would apply, and `Model.from_db`.
"""

import functools

from django.db import connection

from common.db import Statement


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


def insert_statement(instance) -> Statement:
    """The INSERT of `instance`, whose primary key is already set, to run with others
    (common.db.run_in_one_round_trip); `mark_saved` it once that committed."""
    if instance.pk is None:
        raise ValueError("An INSERT here needs the primary key set (no database-generated ids)")
    values = insert_values(instance, instance._meta.concrete_fields)
    return Statement(_insert_sql(type(instance), connection.vendor), values)


def insert(instance) -> None:
    """INSERT `instance`, whose primary key is already set, and mark it saved."""
    statement = insert_statement(instance)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
    mark_saved(instance)


class RowReader:
    """Rows of `model` read with one hand-written query, as instances equal to the ORM's."""

    def __init__(self, model):
        self.model = model
        self._fields = model._meta.concrete_fields
        self._attnames = [field.attname for field in self._fields]

    @functools.cache  # noqa: B019 - one reader per model, kept for the process's life
    def select(self, where: str) -> str:
        """`SELECT <every concrete column> FROM <the model's table> WHERE <where>`."""
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in self._fields)
        table = quote(self.model._meta.db_table)
        return f"SELECT {columns} FROM {table} WHERE {where}"  # noqa: S608 - names from the model

    @functools.cache  # noqa: B019 - one reader per model, kept for the process's life
    def _converters(self, vendor: str) -> list[tuple]:
        """Per field, the converters the ORM applies to its column on this kind of database."""
        converters = []
        for field in self._fields:
            column = field.get_col(self.model._meta.db_table)
            applied = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            converters.append((column, applied))
        return converters

    def instance(self, row):
        """The model instance the ORM would have made of `row` (columns as `select` names)."""
        values = list(row)
        for index, (column, applied) in enumerate(self._converters(connection.vendor)):
            for convert in applied:
                values[index] = convert(values[index], column, connection)
        return self.model.from_db(connection.alias, self._attnames, values)
