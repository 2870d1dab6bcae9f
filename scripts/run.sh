#!/usr/bin/env bash
# The README's run command: set everything up and start the Procfile's processes with honcho,
# the commands production runs, on the embedded defaults (SQLite, kombu's filesystem broker
# in var/broker shared by every process, localstripe as Stripe, console email) on
# http://127.0.0.1:${PORT:-8000}. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PORT="${PORT:-8000}"
STRIPE_PORT="${STRIPE_PORT:-8420}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet --group main

# The Procfile names its commands (gunicorn, celery) as production's PATH has them.
export PATH="$PWD/.venv/bin:$PATH"
export DJANGO_SETTINGS_MODULE=config.settings.local
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:$STRIPE_PORT}"
export STRIPE_JS_URL="${STRIPE_JS_URL:-$STRIPE_API_BASE/js.stripe.com/v3/}"
# The demo runs with DEBUG, a printed login and private networks allowed: loopback only.
export WEB_HOST="${WEB_HOST:-127.0.0.1}"
# Without Redis the cache lives in each process's memory; one web process keeps the rate
# limits and the idempotency records whole (its gevent worker serves the pages while a
# synchronous call waits).
if [ -z "${REDIS_URL:-}" ]; then
  export WEB_CONCURRENCY="${WEB_CONCURRENCY:-1}"
fi
mkdir -p var/log

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "Stopping…"
  # honcho stops its processes' groups (SIGTERM, then SIGKILL after 5 s) before it exits.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

.venv/bin/python manage.py migrate --noinput >var/log/migrate.log

# Stripe is an outside service, not one of the product's processes: localstripe stands in
# for it here, so the Procfile stays exactly what production runs.
# Its objects are kept beside the database (var/), so the customers and cards it saved for
# the demo's organizations are still there next time.
.venv/bin/python scripts/localstripe_loopback.py --port "$STRIPE_PORT" --state-file var/localstripe.pickle \
  >var/log/localstripe.log 2>&1 &
pids+=($!)

# Every process type of the Procfile but `gpu`, one of each (the web one on $PORT): the
# embedded default has no GPU, and its catalog no diffusers model.
.venv/bin/honcho start --no-colour --port "$PORT" web worker upstream webhooks webhooks_slow beat >var/log/run.log 2>&1 &
honcho=$!
pids+=("$honcho")

for _ in $(seq 120); do
  kill -0 "$honcho" 2>/dev/null || { echo "A process failed to start: see var/log/run.log." >&2; exit 1; }
  .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" \
    2>/dev/null && break
  sleep 0.5
done

# Register the webhook with localstripe and create the Stripe prices (packs and plans).
.venv/bin/python manage.py connect_local_stripe \
  || echo "Warning: localstripe is not connected; buying credits will not work (see var/log/localstripe.log)."

echo
echo "Imagen is running on http://127.0.0.1:$PORT  (API docs: http://127.0.0.1:$PORT/docs/)"
.venv/bin/python manage.py ensure_demo
echo "Logs: var/log/run.log (every process, each line prefixed web.1, worker.1, upstream.1,"
echo "webhooks.1, webhooks_slow.1 or beat.1), var/log/localstripe.log, var/log/migrate.log. Press Ctrl-C to stop."
wait -n "${pids[@]}"
