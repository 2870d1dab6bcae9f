from datetime import UTC, date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from reporting.services import rollup_usage


class Command(BaseCommand):
    help = (
        "Recompute the daily usage rollups of the staff usage report, e.g. after a deploy "
        "(the beat task only keeps today and yesterday up to date)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90, help="the last N days (90)")
        parser.add_argument("--from", dest="start", type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", type=date.fromisoformat, help="YYYY-MM-DD")

    def handle(self, *args, days, start, end, **options):
        end = end or timezone.now().astimezone(UTC).date()
        start = start or end - timedelta(days=days - 1)
        if start > end:
            raise CommandError("--from is after --to")
        day = start
        while day <= end:
            result = rollup_usage(day=day)
            self.stdout.write(
                f"{day}: {result.organizations} organization(s), "
                f"{result.revenue_rows} revenue row(s)"
            )
            day += timedelta(days=1)
