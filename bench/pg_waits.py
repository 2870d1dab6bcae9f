"""Sample what a database's sessions are doing, to see where a benchmark's requests wait.

    python bench/pg_waits.py --database imagen_bench --seconds 60    # beside bench/compare.py

Every `--every` ms it reads `pg_stat_activity` for the database's client sessions (not
itself) and counts each one under its state: `active` with its wait (`Lock:transactionid`
is a row lock held by another transaction, `Client:ClientRead` a statement the client is
still sending), or `idle in transaction` (the client holds the transaction open between
statements: under gevent, a greenlet waiting for its turn on the CPU). At the end it prints,
per `application_name` (the Procfile's `web` line sets `imagen-web`), the average number of
sessions in each, over the samples where any of its sessions was busy.
"""

import argparse
import collections
import time

import psycopg

QUERY = """
    SELECT application_name, state,
           coalesce(wait_event_type || ':' || wait_event, 'running') AS doing
    FROM pg_stat_activity
    WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
      AND state IS NOT NULL AND state <> 'idle'
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="imagen_bench")
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=20.0, help="milliseconds")
    options = parser.parse_args()
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    busy_samples: collections.Counter[str] = collections.Counter()
    samples = 0
    deadline = time.monotonic() + options.seconds
    with psycopg.connect(options.dsn, autocommit=True) as connection:
        while time.monotonic() < deadline:
            rows = connection.execute(QUERY, (options.database,)).fetchall()
            samples += 1
            for application in {row[0] for row in rows}:
                busy_samples[application] += 1
            for application, state, doing in rows:
                counts[application][doing if state == "active" else state] += 1
            time.sleep(options.every / 1000)
    print(f"{samples} samples")
    for application, doing in sorted(counts.items()):
        busy = busy_samples[application]
        print(f"\n{application or '(no application_name)'}: busy in {busy} samples")
        print(f"{'sessions on average':>20}  state / wait")
        for what, count in doing.most_common():
            print(f"{count / busy:>20.2f}  {what}")


if __name__ == "__main__":
    main()
