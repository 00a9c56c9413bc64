# `make test` and `make demo` set up what they need on a fresh Debian/Ubuntu machine:
# the virtualenv (.venv), a Docker engine and the local systemd base images.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
# Molecule reads the shared base config from here and resolves its paths against the checkout.
export MOLECULE_PROJECT_DIRECTORY := $(CURDIR)

.PHONY: help venv platform lint test test-upgrade molecule build demo demo-check demo-clean bench changelog clean

help:
	@echo "make test                 lint + every molecule scenario (Debian 12 and 13)"
	@echo "make lint                 yamllint, ansible-lint, collection build, ansible-doc of every role, unit tests"
	@echo "make test-upgrade         the cluster scenario with a rolling upgrade under load and the way back"
	@echo "make molecule SCENARIO=roles/redis/molecule/default   one scenario"
	@echo "make demo / demo-clean    demo cluster running the example DAG, checked in a browser / remove it"
	@echo "make demo-check           the browser check (UI run page, Flower workers) on the running demo"
	@echo "make build                collection tarball in .cache/dist"
	@echo "make platform             Docker engine + local base images only"
	@echo "make bench                site.yml timings, install methods, memory (bench/results.md)"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

platform:
	scripts/test-platform

lint: venv
	scripts/run-tests --lint

# The virtualenv and the platform (engine, base images) are set up side by side: on a fresh machine
# both mostly wait on downloads.
test:
	$(MAKE) --no-print-directory -j2 venv platform
	scripts/run-tests

# The cluster scenario starting on UPGRADE_FROM: side_effect upgrades it to the roles' default
# version while tasks run and goes back (docs/testing.md). Not part of `make test` (its time budget);
# run it when the install, the restart order or the drain changes, and before a release.
UPGRADE_FROM ?= 3.3.1
test-upgrade:
	$(MAKE) --no-print-directory -j2 venv platform
	AIRFLOW_OPS_UPGRADE_FROM=$(UPGRADE_FROM) scripts/run-tests --scenario molecule/cluster

molecule: venv platform
	@test -n "$(SCENARIO)" || { echo "usage: make molecule SCENARIO=roles/<role>/molecule/default"; exit 2; }
	scripts/run-tests --scenario $(SCENARIO)

build: venv
	mkdir -p .cache/dist
	ansible-galaxy collection build --force --output-path .cache/dist .

# The demo: four containers (inventories/demo), the site playbook, one run of the example DAG,
# then the UI and Flower in headless Chromium (screenshots in .cache/demo/).
demo: venv platform
	scripts/test-platform browser
	ansible-playbook -i inventories/demo demo/up.yml
	ansible-playbook -i inventories/demo site.yml
	ansible-playbook -i inventories/demo demo/run-dag.yml
	$(VENV)/bin/python demo/browser_check.py

# Only the browser check, against the running demo.
demo-check: venv
	scripts/test-platform browser
	$(VENV)/bin/python demo/browser_check.py

demo-clean: venv
	ansible-playbook -i inventories/demo demo/down.yml

# Timings of site.yml over the docker and ssh connections, install methods, memory per component:
# bench/run (its docstring says what is measured), results in bench/results.md. Not part of test.
# Parts: make bench BENCH_ARGS="--only docker,git" (any of docker, ssh, wheelhouse, git, install) or BENCH_ARGS=--skip-install.
bench: venv platform
	bench/run $(BENCH_ARGS)

changelog: venv
	antsibull-changelog lint

clean:
	rm -rf .cache
