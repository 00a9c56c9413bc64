#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
# The work is done on the controller by the action plugin of the same name (plugins/action/).

from __future__ import annotations

DOCUMENTATION = r"""
module: role_preflight
short_description: Check a role's inputs before anything changes
description:
  - Runs on the controller. Reads every input of the role's argument spec as the role's tasks see
    it and fails with one message per problem, each naming the variable and what is accepted;
    a message about a secret never holds its value. Addresses and networks are checked with
    Python's ipaddress.
  - Covers what a type cannot express for the redis, postgresql, worker, flower, prometheus and
    firewall roles, and the shared Airflow inputs of the internal role _airflow_common (the secrets
    a host's components need, Fernet keys, secret lengths, users, ports, timing rules, retention,
    the lock file for the Airflow version and Python, wheelhouse inputs).
  - The logic lives in plugins/plugin_utils/role_inputs.py and airflow_inputs.py, unit-tested in tests/unit/.
author: airflow_ops maintainers (!UNKNOWN)
options:
  role:
    description: The role whose inputs to check.
    type: str
    required: true
    choices: [_airflow_common, redis, postgresql, worker, flower, prometheus, firewall]
  context:
    description:
      - Internal values of the role the checks need (redis fixed_directives, the postgresql
        exporter_user, the worker's visibility_timeout, the firewall's ssh_port; for _airflow_common
        the caller's components, their needs, need_secrets, the host's python_minor and architecture).
    type: dict
attributes:
  check_mode:
    description: Runs in check mode as in a normal run; it changes nothing either way.
    support: full
  diff_mode:
    description: Nothing to show a diff of.
    support: none
"""

EXAMPLES = r"""
- name: Check the Redis inputs
  airflow_ops.celery.role_preflight:
    role: redis
    context:
      fixed_directives: "{{ __redis_fixed_directives }}"
"""

RETURN = r"""
errors:
  description: Every problem found, when there is any.
  returned: failure
  type: list
  elements: str
"""
