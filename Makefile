# make demo | make test | make bench -- each builds .venv from scratch when it is absent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := plugins/analysis plugins/backend_local plugins/backend_slurm plugins/backend_htcondor \
           plugins/script_pucalibration plugins/script_cbcsim
STAMP  := $(VENV)/.timecal-installed
TEST_STAMP := $(VENV)/.timecal-test-installed
PYTEST_ARGS ?=

.PHONY: install test demo bench slurm-up slurm-down condor-up condor-down clean

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

# The HTCondor tests need a real single-node pool: Debian 13's htcondor in a chroot (Debian 12
# has no package), built once into HTCONDOR_CHROOT (~3 min, ~400 MB; kept between runs, outside
# the checkout) and started by tests/htcondor/start_htcondor.sh (root only; elsewhere skipped).
HTCONDOR_CHROOT ?= /var/cache/timecal/htcondor-chroot

condor-up:
	@if [ "$$(id -u)" = 0 ]; then TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) bash tests/htcondor/start_htcondor.sh; \
	else echo "make: not root: the HTCondor tests will be skipped (they need a chroot and condor_master)"; fi

condor-down:
	@if [ "$$(id -u)" = 0 ]; then TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) bash tests/htcondor/stop_htcondor.sh; fi

test: $(TEST_STAMP) slurm-up condor-up
	TIMECAL_HTCONDOR_CHROOT=$(HTCONDOR_CHROOT) $(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; $(MAKE) --no-print-directory slurm-down condor-down; exit $$status

demo: install
	bash examples/demo/run_demo.sh

bench: $(TEST_STAMP)
	@for b in benchmarks/bench_*.py; do echo "=== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .bench
