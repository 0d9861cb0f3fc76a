# segment — every target documents itself: `make help`.
# The first target that needs Python creates .venv (python3 -m venv) and installs the package with
# its dev extras, pinned by requirements.lock; it reinstalls whenever pyproject.toml or the lock
# changes. In an active conda environment (CONDA_PREFIX) it installs there instead of .venv
# (SEGMENT_VENV=1 keeps .venv).

PYTHON  ?= python3
ifneq ($(and $(CONDA_PREFIX),$(if $(SEGMENT_VENV),,yes)),)
VENV    := $(CONDA_PREFIX)
$(info segment: using the active conda environment $(CONDA_PREFIX) (SEGMENT_VENV=1 to use .venv instead))
else
VENV    := .venv
endif
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.segment-installed
LOCK    := requirements.lock
QUARTER ?=
PERIOD  ?= $(QUARTER)
DATA    ?= data/demo/data.yaml
SCHEME  ?= s1_four_tier

.DEFAULT_GOAL := help
.PHONY: help venv lock demo validate grade calibrate review-export report story test fuzz test-slow test-all test-browser test-spark test-postgres bench bench-quick bench-big lab docs realdata clean

help:  ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PERIOD=2026Q3 | 2026-09 | 2026H2 | 2026 (QUARTER= works too), DATA=path/to/data.yaml, SCHEME=id-or-path, REPORTS=folder, REPLACE=1"

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "segment: installing into $(VENV) (versions pinned by $(LOCK))"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	@touch $(STAMP)

lock: $(STAMP)  ## write requirements.lock from the environment's installed versions (after an upgrade that passes make test)
	@(echo "# segment's tested versions: \`make\` installs with these as constraints (pip -c), so a fresh clone"; \
	  echo "# builds its reports with the libraries CI ran. Regenerate after an upgrade that passes: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable) > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)

venv: $(STAMP)  ## create .venv and install segment with its dev extras (automatic for every target)

DEMO_DATA := data/demo/data.yaml
NEEDS_DEMO := $(if $(filter $(DEMO_DATA),$(DATA)),$(DEMO_DATA))

$(DEMO_DATA): $(wildcard src/segment/demo/*.py) | $(STAMP)  # remade when the generator changes
	$(BIN)/segment demo --out data/demo

demo: $(STAMP)  ## (re)write the demo company into data/demo/
	$(BIN)/segment demo --out data/demo

validate: $(STAMP) $(NEEDS_DEMO)  ## check the data config DATA (default: the demo) and list every problem
	$(BIN)/segment validate --data $(DATA)

grade: $(STAMP) $(NEEDS_DEMO)  ## grade DATA with SCHEME into reports/grading-<scheme>.csv
	$(BIN)/segment grade --data $(DATA) --scheme $(SCHEME) --out reports/grading-$(notdir $(basename $(SCHEME))).csv

calibrate: $(STAMP) $(NEEDS_DEMO)  ## calibrate SCHEME on the demo's history → reports/calibration/
	$(BIN)/segment calibrate --data $(DATA) --scheme $(SCHEME) --train-as-of 2025-03-31,2025-06-30,2025-09-30 \
	  --test-as-of 2026-03-31 --horizon-days 180 --out reports/calibration

review-export: $(STAMP)  ## write the review sheet of PERIOD (default: the latest reported) into reports/<PERIOD>/
	$(BIN)/segment review export $(if $(PERIOD),--period $(PERIOD))

report: $(STAMP) $(NEEDS_DEMO)  ## a period's reports into reports/<PERIOD>/ (default: the latest complete period of the scheme's cadence)
	$(BIN)/segment report $(if $(PERIOD),--period $(PERIOD)) --data $(DATA) --scheme $(SCHEME) $(if $(REPORTS),--reports-dir $(REPORTS)) $(if $(REPLACE),--replace)

story: $(STAMP) $(DEMO_DATA)  ## the two-year story on the demo: 8 quarters, reviews, sign-offs, an approval refused then given → reports/story/
	rm -rf reports/story
	$(BIN)/python -m tests.story --out reports/story --data $(DEMO_DATA)

test: $(STAMP)  ## the test suite (without the slow, browser, spark and postgres markers), one pytest-xdist worker per core
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m "not slow and not browser and not spark and not postgres"

test-browser: $(STAMP)  ## open every report in headless Chromium (installs Debian's chromium + CJK fonts if missing)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } \
	  || echo "warning: could not install chromium; the browser tests will be skipped"
	$(BIN)/python -m pytest -q -m browser

test-spark: $(STAMP)  ## Spark (local[2]) gives the same validation and snapshots as DuckDB (installs the spark extra; needs Java 17)
	@$(BIN)/python -c "import pyspark" 2>/dev/null || $(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,spark]'
	@java -version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; } \
	  || echo "warning: no working java and none could be installed: the Spark tests are skipped (Spark needs Java 17)"
	$(BIN)/python -m pytest -q -m spark || [ $$? -eq 5 ]  # 5: the module skipped itself (no java), said above

test-postgres: $(STAMP)  ## SQL sources on a throwaway PostgreSQL server: the demo read from it validates, grades and reports as its files; time zones; read-only (installs the postgres extra and PostgreSQL if missing)
	@$(BIN)/python -c "import psycopg" 2>/dev/null || $(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,postgres]'
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; } \
	  || echo "warning: no PostgreSQL server and none could be installed: the PostgreSQL tests are skipped"
	$(BIN)/python -m pytest -q -m postgres

test-slow: $(STAMP)  ## the slow checks: every built-in scheme × two quarters × the three reports (~7 min; CI runs it)
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m slow

fuzz: $(STAMP)  ## the mutation fuzzer beyond the suite's 120 cases: make fuzz N=2000 [FIRST=120]
	SEGMENT_FUZZ_N=$(or $(N),1000) SEGMENT_FUZZ_FIRST=$(or $(FIRST),120) $(BIN)/python -m pytest -q -n auto --dist worksteal tests/test_fuzz.py

test-all: $(STAMP)  ## every test
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## benchmarks (not tests), ~15 min: demo, features 1M/10M/50M vs raw DuckDB, load+validate (memory/disk), grade vs floor, Excel readers, grading vs numpy floor, calibration, reports → bench/results/
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)  ## the benchmarks at small sizes (~2 min) → bench/results/quick/
	$(BIN)/python bench/run.py --quick

bench-big: $(STAMP)  ## segment validate / grade / report on a 1.1M-customer demo (~50M lines; ~15 min, 1.5 GB under SEGMENT_BENCH_DATA) → bench/results/big/
	$(BIN)/python bench/run.py --big

realdata: $(STAMP)  ## validate the real Online Retail II data in ../shared (params/data/online_retail.yaml)
	$(BIN)/segment validate --data params/data/online_retail.yaml

docs: $(STAMP)  ## regenerate docs/data_contract.md from src/segment/data/contract.py
	$(BIN)/segment contract --markdown > docs/data_contract.md

$(VENV)/.lab-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,lab]'
	@touch $@

lab: $(VENV)/.lab-installed  ## open JupyterLab on the project's own kernel (installs it on first use); LAB_ARGS=… passes options
	$(BIN)/jupyter lab --notebook-dir=. $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

clean:  ## remove generated reports and demo data (keeps .venv)
	rm -rf data/demo reports/20*Q* reports/index.html reports/.staging-*
