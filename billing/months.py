"""Budgets count calendar months in UTC, each named by its first day."""

from datetime import UTC, date, datetime


def month_of(moment: datetime) -> date:
    """The first day of `moment`'s calendar month in UTC: the month it is counted in."""
    return moment.astimezone(UTC).date().replace(day=1)
