# fedbench: `make bench` runs the testbed, `make test` runs the tests.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# One run id shared by every step of one `make` invocation.
export FEDBENCH_RUN_ID ?= $(shell date -u +%Y%m%dT%H%M%SZ)
INVENTORY ?= inventories/testbed
# Where binaries may come from. `build` uses only the Go module proxy; on a
# machine that reaches release downloads, TOOLCHAIN_SOURCE=auto is faster.
TOOLCHAIN_SOURCE ?= build
# Extra ansible-playbook arguments, e.g. ARGS="-e experiment_lifecycle_profile=full".
ARGS ?=
PLAYBOOK := ansible-playbook -i $(INVENTORY) -e toolchain_source=$(TOOLCHAIN_SOURCE) $(ARGS)
# One run at a time per work dir: bench, provision and clean hold its lock (fd 9,
# closed by every module Ansible runs, so nothing the run leaves running keeps it).
WORK_DIR := $(or $(FEDBENCH_WORK_DIR),$(CURDIR)/.work)
LOCK := mkdir -p "$(WORK_DIR)" && exec 9>>"$(WORK_DIR)/run.lock" && \
	{ flock -n 9 || { echo "another make bench, provision or clean is running in $(WORK_DIR) (pid $$(cat "$(WORK_DIR)/run.pid" 2>/dev/null || echo unknown)); wait for it to end, or use another FEDBENCH_WORK_DIR" >&2; exit 75; }; } && \
	echo $$$$ > "$(WORK_DIR)/run.pid"

.PHONY: help doctor venv inventory toolchain bench provision clean test lint unit integration molecule benchmarks compare

help:
	@echo "make bench   toolchain, provision the testbed, run the experiments, tear down"
	@echo "make test    lint, unit and integration tests, molecule (embedded and kind testbeds)"
	@echo "make clean   tear down every cluster of the testbed, even an interrupted one"
	@echo "make doctor  what the commands need on this machine, and what is missing (changes nothing)"
	@echo "make compare A=<run> B=<run>   every headline figure of two runs, with the change"

# What the two commands need on this machine and what is missing; changes nothing.
doctor:
	@$(PYTHON) bin/fedbench-doctor

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock
	@echo "== venv: installing pinned Python packages into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	touch $@

# A mistyped INVENTORY fails here, before anything runs (the playbooks refuse an
# inventory without a controller too).
inventory:
	@test -e "$(INVENTORY)" || { echo "INVENTORY=$(INVENTORY): no such inventory (the project's: $$(ls -d inventories/*/ | tr '\n' ' '))" >&2; exit 2; }

toolchain: venv
	@echo "== toolchain: pinned binaries (source $(TOOLCHAIN_SOURCE)); a cold build shows its progress below"
	$(VENV)/bin/python bin/fedbench-toolchain --source $(TOOLCHAIN_SOURCE)

# A run that fails or is interrupted (Ctrl-C) still merges and reports the
# samples that finished, marked partial, and tears the testbed down.
# ansible-playbook exits 99 when it is interrupted; the shell's trap may run
# only after that exit has been read, so 99 counts as interrupted too.
bench: inventory toolchain
	@echo "== bench: run $(FEDBENCH_RUN_ID) on $(INVENTORY)"
	$(LOCK); \
	rc=0; how=failed; trap 'how=interrupted; rc=130' INT TERM; \
	FEDBENCH_UNDER_MAKE=1 $(PLAYBOOK) site.yml || rc=$$((rc ? rc : $$?)); \
	trap '' INT; \
	if [ $$rc -eq 99 ]; then how=interrupted; rc=130; fi; \
	if [ $$rc -ne 0 ]; then echo "== the run $$how (exit $$rc): merging the samples that finished and drawing their report, marked partial; then teardown"; \
	  $(PLAYBOOK) playbooks/report.yml -e "report_partial='the run $$how (exit $$rc) before it finished.'" || true; fi; \
	$(PLAYBOOK) playbooks/teardown.yml --tags all || rc=$$((rc ? rc : $$?)); \
	results=$${FEDBENCH_RESULTS_DIR:-results}/$(FEDBENCH_RUN_ID); \
	if [ -f $$results/summary.md ]; then cat $$results/summary.md; echo "results: $$results/"; fi; \
	if [ -f $$results/report.html ]; then echo "report: $$results/report.html"; fi; \
	exit $$rc

provision: inventory toolchain
	$(LOCK); $(PLAYBOOK) playbooks/toolchain.yml playbooks/provision.yml

clean: inventory venv
	$(LOCK); $(PLAYBOOK) playbooks/teardown.yml

test: lint unit integration molecule

lint: venv
	@echo "== lint: ansible-lint (production profile)"
	ansible-lint

unit: venv
	@echo "== unit tests"
	pytest tests/unit

integration: toolchain
	@echo "== integration tests on real clusters (embedded and kind); the slowest are listed at the end"
	pytest tests/integration --durations=25

molecule: toolchain
	@echo "== molecule: the default scenario on the embedded testbed"
	@start=$$(date +%s) && molecule test && echo "== molecule default: passed in $$(( $$(date +%s) - start )) s"
	@echo "== molecule: the kind scenario (real kubelets, images built here)"
	@start=$$(date +%s) && molecule test -s kind && echo "== molecule kind: passed in $$(( $$(date +%s) - start )) s"

benchmarks: toolchain
	$(VENV)/bin/python benchmarks/testbed_startup
	$(VENV)/bin/python benchmarks/lifecycle_overhead
	$(VENV)/bin/python benchmarks/observer_effect
	$(VENV)/bin/python benchmarks/burst_client
	$(VENV)/bin/python benchmarks/churn_capacity
	$(VENV)/bin/python benchmarks/hollow_scale
	$(VENV)/bin/python benchmarks/kind_startup
	$(VENV)/bin/python benchmarks/istio_outlier

compare: venv
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=<run id or results folder> B=<run id or results folder>"; exit 2; }
	$(VENV)/bin/python bin/fedbench-compare $(A) $(B) --out $${FEDBENCH_RESULTS_DIR:-results}/compare-$(notdir $(A))-$(notdir $(B)).md \
	  --html $${FEDBENCH_RESULTS_DIR:-results}/compare-$(notdir $(A))-$(notdir $(B)).html
