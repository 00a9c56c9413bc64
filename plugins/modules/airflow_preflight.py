#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
# The work is done on the controller by the action plugin of the same name (plugins/action/).

from __future__ import annotations

DOCUMENTATION = r"""
module: airflow_preflight
short_description: Check the shared Airflow inputs of a host before anything changes
description:
  - Runs on the controller. Reads the host's shared Airflow inputs (those of the internal role
    airflow_ops.celery._airflow_common) and fails with one message per problem, each naming the
    variable and what is accepted; messages about secrets never hold their values.
  - Checks what a type cannot: the secrets the host's components need, Fernet keys, secret lengths,
    users and roles, ports, identifiers, the timing rules between heartbeats, retries and the
    visibility timeout, retention, the lock file for the Airflow version and Python, wheelhouse inputs.
  - The logic lives in plugins/plugin_utils/airflow_inputs.py, unit-tested in tests/unit/.
author: airflow_ops.celery contributors
options:
  components:
    description: The Airflow components the caller configures on this host.
    type: list
    elements: str
    required: true
  needs:
    description: What those components need in airflow.cfg (metadata_db, fernet_key, jwt_secret, ...).
    type: list
    elements: str
    required: true
  need_secrets:
    description: The secret inputs behind each need.
    type: dict
    required: true
  python_minor:
    description: The host's Python X.Y (selects the lock file).
    type: str
  architecture:
    description: The host's architecture (checked for wheelhouse installs).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the shared Airflow inputs
  airflow_ops.celery.airflow_preflight:
    components: "{{ _airflow_common_components }}"
    needs: "{{ __airflow_common_needs }}"
    need_secrets: "{{ __airflow_common_need_secrets }}"
    python_minor: "{{ __airflow_common_python_minor }}"
    architecture: "{{ ansible_facts['architecture'] }}"
"""

RETURN = r"""
errors:
  description: Every problem found, when there is any.
  returned: failure
  type: list
  elements: str
"""
