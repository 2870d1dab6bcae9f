#!/usr/bin/env bash
# The README's run command: set everything up and start the product with the embedded
# defaults (SQLite, a Celery worker on the filesystem broker, localstripe as Stripe,
# console email) on http://127.0.0.1:${PORT:-8000}. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PORT="${PORT:-8000}"
STRIPE_PORT="${STRIPE_PORT:-8420}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet --group main

export DJANGO_SETTINGS_MODULE=config.settings.local
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:$STRIPE_PORT}"
export STRIPE_JS_URL="${STRIPE_JS_URL:-$STRIPE_API_BASE/js.stripe.com/v3/}"
mkdir -p var/log

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "Stopping…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

.venv/bin/python manage.py migrate --noinput >var/log/migrate.log

.venv/bin/python scripts/localstripe_loopback.py --port "$STRIPE_PORT" >var/log/localstripe.log 2>&1 &
pids+=($!)

.venv/bin/celery -A config worker --beat -Q celery,webhooks,webhooks_retry --loglevel INFO --concurrency 2 \
  --schedule var/celerybeat-schedule >var/log/worker.log 2>&1 &
pids+=($!)

.venv/bin/python manage.py runserver "127.0.0.1:$PORT" --noreload >var/log/web.log 2>&1 &
pids+=($!)

for _ in $(seq 60); do
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
echo "Logs are in var/log/. Press Ctrl-C to stop."
wait -n "${pids[@]}"
