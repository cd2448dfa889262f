# make demo | make test | make bench | make docs -- each builds .venv from scratch when it is absent.
# make test-lowest -- the pyprojects' floors, tried in .venv-lowest; make test-latest -- the
# newest releases, tried in .venv-latest; make lint -- ruff and mypy (all below).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := plugins/analysis plugins/backend_local plugins/backend_slurm plugins/backend_htcondor plugins/backend_gateway \
           plugins/script_pucalibration plugins/script_cbcsim
STAMP  := $(VENV)/.timecal-installed
TEST_STAMP := $(VENV)/.timecal-test-installed
DOCS_STAMP := $(VENV)/.timecal-docs-installed
PYTEST_ARGS ?=

.PHONY: install test docs demo bench slurm-up slurm-down slurmnet-down condor-up condor-down browser clean \
        test-lowest test-latest test-fast lint

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=70"
	$(BIN)/python -m pip install -q -e . $(addprefix -e ,$(PLUGINS))
	touch $@

# the docs extra too: the tests build the timerc reference page and check every floor
$(TEST_STAMP): $(STAMP) tests/plugins/timecal_testplugin/pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,docs]" -e tests/plugins/timecal_testplugin
	touch $@

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $@

# The manual, built strictly: every warning is an error (-W, all of them listed: --keep-going),
# every cross-reference and internal link must resolve (-n), from a fresh environment (-E:
# generated pages are re-read when the code they describe changed). Open docs/_build/html/index.html.
docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -n -q -b html docs docs/_build/html

# The SLURM tests need a real single-node cluster: Debian's slurm-wlm + munge, installed and
# started by tests/slurm/start_slurm.sh (root only; elsewhere those tests say why they skip).
slurm-up:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm/start_slurm.sh; \
	else echo "make: not root: the SLURM tests will be skipped (they need slurmctld/slurmd)"; fi

slurm-down:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm/stop_slurm.sh; fi

# The multi-node SLURM tests (tests/test_slurm_nodes.py) start a cluster of their own for each
# test, in network namespaces (tests/slurmnet/), and remove it after the test, passed or failed.
# slurmnet-down removes whatever a run that could not clean up left (pytest killed, say):
# processes, namespaces, veth pairs, the bridge, the cgroups.
slurmnet-down:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurmnet/stop_cluster.sh; fi

# The status-page tests load the page in a real browser: Debian's chromium (root only;
# elsewhere those tests say why they skip).
browser:
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
		|| echo "make: could not install chromium: the status-page browser tests will skip"; fi

# The HTCondor tests need a real single-node pool: Debian 13's htcondor in a chroot (Debian 12
# has no package), built once into HTCONDOR_CHROOT (~3 min, ~400 MB; kept between runs, outside
# the checkout) and started by tests/htcondor/start_htcondor.sh (root only; elsewhere skipped).
HTCONDOR_CHROOT ?= /var/cache/timecal/htcondor-chroot

condor-up:
	@if [ "$$(id -u)" = 0 ]; then TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) bash tests/htcondor/start_htcondor.sh; \
	else echo "make: not root: the HTCondor tests will be skipped (they need a chroot and condor_master)"; fi

condor-down:
	@if [ "$$(id -u)" = 0 ]; then TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) bash tests/htcondor/stop_htcondor.sh; fi

test: $(TEST_STAMP) slurm-up condor-up browser
	TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) $(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; $(MAKE) --no-print-directory slurm-down condor-down slurmnet-down; exit $$status

# The floors of every pyproject, tried: the lowest versions they allow of each direct
# dependency (uv's lowest-direct resolution) in a venv of their own, and the part of the suite
# that exercises each of those packages (the monitor in a pty included), quick enough for CI.
# TIMECAL_LOWEST_VERSIONS=1: tests/test_packaging.py then checks each floor was installed.
LOWEST := .venv-lowest
LOWEST_TESTS := tests/test_shell.py tests/test_plugins.py tests/test_config.py tests/test_yamlconf.py \
                tests/test_ledger.py tests/test_lock.py tests/test_driver_status.py tests/test_backend_local.py \
                tests/test_slurm_settings.py tests/test_htcondor_backend.py tests/test_cbcsim_step.py \
                tests/test_cbcsim_detection.py tests/test_cbcsim_synthetic.py tests/test_cbcsim_dump.py \
                tests/test_observables.py tests/test_observables_fastmaps.py tests/test_plotscan.py \
                tests/test_plotscan_data.py tests/test_calibration.py tests/test_packaging.py \
                tests/test_self_contained.py tests/test_architecture.py tests/test_exits.py \
                tests/test_causes.py tests/test_failure_causes.py tests/test_gateway.py tests/test_pdf_layers.py \
                tests/test_cbcsim_fastpath.py tests/test_selection_parser.py tests/test_untested_versions.py \
                tests/test_timerc_keys.py tests/test_doc_examples.py

test-lowest: $(STAMP)
	$(BIN)/python -m pip install -q uv
	rm -rf $(LOWEST)
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv venv -q --seed -p $(PYTHON) $(LOWEST)
	$(BIN)/uv pip install -q -p $(LOWEST)/bin/python --resolution lowest-direct \
	    -e ".[test]" $(addprefix -e ,$(PLUGINS)) -e tests/plugins/timecal_testplugin
	TIMECAL_LOWEST_VERSIONS=1 $(LOWEST)/bin/python -m pytest -m "not slurm and not htcondor and not slow" $(PYTEST_ARGS) $(LOWEST_TESTS)

# The newest release of every dependency (uv's highest resolution; a pre-release only where a
# requirement asks for one, as root>=0.1a8 does), in a venv of its own, and the same part of the
# suite as test-lowest: a release that breaks a fast path on private API must find its gate
# shut (tests/test_pdf_layers.py...), one that breaks the public path a failing test. uv reads
# neither pip's configuration nor its constraints file (this machine's /etc/xdg/pip caps only
# torch, which timecal does not use): --no-config keeps a uv.toml out too. What a bound of
# another package holds back from its newest release is listed (uv pip list --outdated).
LATEST := .venv-latest

test-latest: $(STAMP)
	$(BIN)/python -m pip install -q uv
	rm -rf $(LATEST)
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv venv -q --no-config --seed -p $(PYTHON) $(LATEST)
	$(BIN)/uv pip install -q --no-config -p $(LATEST)/bin/python --resolution highest --upgrade \
	    -e ".[test]" $(addprefix -e ,$(PLUGINS)) -e tests/plugins/timecal_testplugin
	@echo "make test-latest: installed:"; $(BIN)/uv pip list --no-config -p $(LATEST)/bin/python --format freeze \
	    | grep -iE '^(matplotlib|uproot|awkward|numpy|dask|distributed|dask-jobqueue|cmd2|pandas|pyarrow|mplhep|hist|pluggy|cryptography)=' | tr '\n' ' '; echo
	@echo "make test-latest: held back from their newest release by another package's bound:"; \
	    $(BIN)/uv pip list --no-config -p $(LATEST)/bin/python --outdated 2>/dev/null | tail -n +3 | grep -v '^timecal' || echo "  none"
	$(LATEST)/bin/python -m pytest -m "not slurm and not htcondor and not slow" $(PYTEST_ARGS) $(LOWEST_TESTS)

# ruff (lint and format check) and mypy (strict) over the tree, as pyproject.toml configures
# them, at the versions of its `lint` dependency group. Findings listed in the lint baseline
# (pyproject.toml, written by tools/lint-fix) pass; any other fails.
LINT_STAMP := $(VENV)/.timecal-lint-installed

$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --group lint
	touch $@

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite without the tests that need the SLURM cluster or the HTCondor pool (no lock needed).
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slurm and not htcondor" $(PYTEST_ARGS)

demo: install
	bash examples/demo/run_demo.sh

bench: $(TEST_STAMP)
	@for b in benchmarks/bench_*.py; do echo "=== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(LOWEST) $(LATEST) demo-output .bench docs/_build
