# `make test` and `make demo` set up what they need on a fresh Debian/Ubuntu machine:
# the virtualenv (.venv), a Docker engine and the local systemd base images.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
# Molecule reads the shared base config from here and resolves its paths against the checkout.
export MOLECULE_PROJECT_DIRECTORY := $(CURDIR)

.PHONY: help venv platform lint test molecule build demo demo-clean changelog clean

help:
	@echo "make test                 lint + every molecule scenario (Debian 12 and 13)"
	@echo "make lint                 yamllint, ansible-lint, collection build, unit tests"
	@echo "make molecule SCENARIO=roles/redis/molecule/default   one scenario"
	@echo "make demo / demo-clean    demo cluster (see README)"
	@echo "make build                collection tarball in .cache/dist"
	@echo "make platform             Docker engine + local base images only"

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

test: venv platform
	scripts/run-tests

molecule: venv platform
	@test -n "$(SCENARIO)" || { echo "usage: make molecule SCENARIO=roles/<role>/molecule/default"; exit 2; }
	scripts/run-tests --scenario $(SCENARIO)

build: venv
	mkdir -p .cache/dist
	ansible-galaxy collection build --force --output-path .cache/dist .

demo: venv platform
	@echo "make demo provisions the demo cluster once the site playbook covers every role;" >&2
	@echo "today the collection ships the redis role only (see README, 'Status')." >&2
	@exit 2

demo-clean:
	@echo "nothing to clean: make demo has not created anything yet"

changelog: venv
	antsibull-changelog lint

clean:
	rm -rf .cache
