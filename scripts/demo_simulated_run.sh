#!/usr/bin/env bash
# `make demo`'s live part: start the SIMULATED provider (costlens serve-sim) on loopback,
# send the shipped sample requests to three seed models through `costlens run`, stop it.
# Everything it logs is tagged provider=simulated and named "simulated-demo": the answers
# and token counts come from the simulator, not from any real model.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DB=$1
REQUESTS=$2
PORT=${COSTLENS_DEMO_SIM_PORT:-18181}
URL="http://127.0.0.1:${PORT}"

"$BIN/costlens" serve-sim --port "$PORT" --seed 7 --latency-ms 20 >/dev/null 2>&1 &
SIM=$!
trap 'kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do  # up to 10 s for the simulator to answer /health
    if "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('${URL}/health', timeout=1).status_code != 200)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

echo "simulated run: costlens run against costlens serve-sim (${URL}), 3 models (SIMULATED answers)"
"$BIN/costlens" --db "$DB" run "$REQUESTS" \
    --model gpt-4o-mini --model gpt-4o --model claude-3-5-haiku-20241022 \
    --base-url "${URL}/v1" --concurrency 16 --run-name simulated-demo --tag provider=simulated
