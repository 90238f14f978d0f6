#!/usr/bin/env bash
# What the lake tier (tests/lake, `make test-lake`) needs besides costlens's own venv: Java and the `lake` extra.
#
#   scripts/lake_tier.sh install   # Java (apt, as root) if `java` is missing, then `pip install -e '.[lake]'`
#                                  # if pyspark or moto is not importable; seconds when both are already there
#   scripts/lake_tier.sh status    # exit 0 when Java, pyspark and moto are all there
#
# The extra is large (pyspark is ~491 MB, its jars included) and only this tier needs it, so `make test` never
# installs it. Spark runs in local mode and reads lakes from a directory (pyspark ships no hadoop-aws, so no
# s3a:// offline); S3 is moto's server on loopback, started by the `s3_server` fixture (tests/lake/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
JAVA_PACKAGE=${LAKE_JAVA_PACKAGE:-openjdk-17-jre-headless}

log() { echo "lake_tier: $*" >&2; }

have_java() { command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; }

# find_spec, not import: importing moto takes ~1 s, and this check runs on every `make test-lake`. flask and
# flask_cors are what moto's [server] extra adds (moto_server needs them).
have_extra() {
	"$PY" -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, sys.argv[1:])))" \
		pyspark py4j moto boto3 flask flask_cors 2>/dev/null
}

versions() { "$PY" -c "import importlib.metadata as m; print('pyspark', m.version('pyspark'), '/ moto', m.version('moto'))"; }

cmd_install() {
	[ -x "$PY" ] || { log "no $PY: run 'make install' first"; exit 2; }
	if have_java; then
		log "java: $(java -version 2>&1 | head -n 1)"
	else
		if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
			log "WARNING: java is missing and cannot be installed here (needs root and apt-get):"
			log "install a Java 17+ runtime ($JAVA_PACKAGE on Debian) or set JAVA_HOME; Spark cannot start without it"
			exit 1
		fi
		log "installing $JAVA_PACKAGE (apt, ~10 s)"
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$JAVA_PACKAGE" >/dev/null; } || ! have_java; then
			log "WARNING: apt-get could not install $JAVA_PACKAGE; Spark cannot start without Java"
			exit 1
		fi
		log "java: $(java -version 2>&1 | head -n 1)"
	fi
	if have_extra; then
		log "pyspark and moto already installed in $VENV"
	else
		log "installing the lake extra (pyspark ~491 MB, moto[server]) into $VENV: a minute or two, once"
		"$PY" -m pip install --disable-pip-version-check --quiet -e '.[lake]'
		have_extra || { log "pyspark or moto still not importable after the install"; exit 1; }
	fi
	log "ready: $(versions)"
}

case "${1:-}" in
install) cmd_install ;;
status) have_java && have_extra ;;
*)
	echo "usage: $0 {install|status}" >&2
	exit 2
	;;
esac
