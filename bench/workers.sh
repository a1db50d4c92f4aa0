#!/usr/bin/env bash
# Start WORKERS copies of the Procfile's worker (as `heroku ps:scale worker=N` would)
# and stop them all on SIGTERM.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMD="$(sed -n 's/^worker: //p' "$ROOT/Procfile" | sed 's/^exec //')"
pids=()
for _ in $(seq "${WORKERS:-1}"); do
  (cd "$ROOT" && exec bash -c "exec $CMD") &
  pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM INT
wait
