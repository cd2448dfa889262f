# make demo | make test | make bench -- each builds .venv from scratch when it is absent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := plugins/analysis plugins/backend_local plugins/backend_slurm plugins/backend_htcondor \
           plugins/script_pucalibration plugins/script_cbcsim
STAMP  := $(VENV)/.timecal-installed
TEST_STAMP := $(VENV)/.timecal-test-installed
PYTEST_ARGS ?=

.PHONY: install test demo bench slurm-up slurm-down browser clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=70"
	$(BIN)/python -m pip install -q -e . $(addprefix -e ,$(PLUGINS))
	touch $@

$(TEST_STAMP): $(STAMP) tests/plugins/timecal_testplugin/pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]" -e tests/plugins/timecal_testplugin
	touch $@

# The SLURM tests need a real single-node cluster: Debian's slurm-wlm + munge, installed and
# started by tests/slurm/start_slurm.sh (root only; elsewhere those tests say why they skip).
slurm-up:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm/start_slurm.sh; \
	else echo "make: not root: the SLURM tests will be skipped (they need slurmctld/slurmd)"; fi

slurm-down:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm/stop_slurm.sh; fi

# The status-page tests load the page in a real browser: Debian's chromium (root only;
# elsewhere those tests say why they skip).
browser:
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
		|| echo "make: could not install chromium: the status-page browser tests will skip"; fi

test: $(TEST_STAMP) slurm-up browser
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; $(MAKE) --no-print-directory slurm-down; exit $$status

demo: install
	bash examples/demo/run_demo.sh

bench: $(TEST_STAMP)
	@for b in benchmarks/bench_*.py; do echo "=== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .bench
