import sys

from django.core.management.base import BaseCommand

from billing.selectors import ledger_mismatches


class Command(BaseCommand):
    help = "List organizations whose balance differs from their ledger sum; exit 1 if any."

    def handle(self, *args, **options):
        mismatches = ledger_mismatches()
        for row in mismatches:
            self.stdout.write(
                f"{row['slug']}: balance {row['credit_balance']} != ledger sum {row['ledger_sum']}"
            )
        if mismatches:
            self.stderr.write(f"{len(mismatches)} organization(s) out of balance")
            sys.exit(1)
        self.stdout.write("Ledger verified: every balance equals its ledger sum.")
