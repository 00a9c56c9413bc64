# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of airflow_ops.celery.airflow_preflight: checks a host's shared Airflow inputs on
the controller (plugins/plugin_utils/airflow_inputs.py)."""

from __future__ import annotations

import os
from pathlib import Path

from ansible.errors import AnsibleUndefinedVariable
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.airflow_ops.celery.plugins.plugin_utils import airflow_inputs

LOCKS = Path(__file__).resolve().parents[2] / "roles" / "_airflow_common" / "files" / "constraints"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        required = ("components", "needs", "need_secrets")
        if [name for name in required if name not in args] or set(args) - set(required) - {"python_minor", "architecture"}:
            return dict(result, failed=True, msg=f"airflow_preflight takes {', '.join(required)}, python_minor and architecture.")
        values = {}
        for name in airflow_inputs.INPUTS:
            if name not in task_vars:
                continue
            try:
                # Resolved by name, as a task sees it (templating the raw value of a play variable
                # that reads hostvars gives None here).
                values[name] = self._templar.template(trust_as_template("{{ %s }}" % name))
            except AnsibleUndefinedVariable:
                values[name] = None  # e.g. a reference to an undefined vault variable: reported as not set
        version, python_minor = values.get("airflow_version"), str(args.get("python_minor", ""))
        lock_input = LOCKS / f"airflow-{version}.in"
        dags_src = str(values.get("airflow_dags_src") or "")
        ctx = airflow_inputs.Context(
            host=task_vars["inventory_hostname"],
            components=args["components"],
            needs=args["needs"],
            need_secrets=args["need_secrets"],
            python_minor=python_minor,
            architecture=str(args.get("architecture", "")),
            lock_exists=(LOCKS / f"airflow-{version}-python{python_minor}.txt").is_file(),
            lock_extras=airflow_inputs.lock_extras(lock_input.read_text()) if lock_input.is_file() else None,
            dags_src_is_dir=not dags_src or os.path.isdir(os.path.expanduser(dags_src)),
        )
        errors = airflow_inputs.check(values, ctx)
        if errors:
            return dict(result, failed=True, changed=False, errors=errors, msg=" ".join(errors))
        return dict(result, changed=False, msg="The shared Airflow inputs of this host are fine.")
