# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of airflow_ops.celery.role_preflight: checks one role's inputs on the controller
(plugins/plugin_utils/role_inputs.py)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from ansible.errors import AnsibleUndefinedVariable
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.airflow_ops.celery.plugins.plugin_utils import airflow_inputs, role_inputs

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        role = args.get("role")
        if role not in role_inputs.CHECKS or set(args) - {"role", "context"}:
            return dict(result, failed=True,
                        msg=f"role_preflight takes role (one of {', '.join(role_inputs.CHECKS)}) and an optional context.")
        # Every public input of the role's spec (the shared Airflow role's entry point is `host`),
        # and for the shared Airflow role the inputs its checks read.
        spec = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
        entry = "host" if role == "_airflow_common" else "main"
        names = [name for name in spec["argument_specs"][entry].get("options", {}) if not name.startswith("_")]
        if role == "_airflow_common":
            names += [name for name in airflow_inputs.INPUTS if name not in names]
        values = {}
        for name in names:
            if name not in task_vars:
                continue
            try:
                # Resolved by name, as a task of the role sees it.
                values[name] = self._templar.template(trust_as_template("{{ %s }}" % name))
            except AnsibleUndefinedVariable:
                values[name] = None  # a reference to an undefined (vault) variable: the check reports it
        context = dict(args.get("context") or {}, host=task_vars.get("inventory_hostname"))
        if role == "_airflow_common":
            context.update(self._airflow_files(values, str(context.get("python_minor", ""))))
        errors = role_inputs.check(role, values, context)
        if errors:
            return dict(result, failed=True, changed=False, errors=errors, msg=" ".join(errors))
        return dict(result, changed=False, msg=f"The {role} inputs of this host are fine.")

    @staticmethod
    def _airflow_files(values: dict, python_minor: str) -> dict:
        """What the shared Airflow checks need from the controller's files: the lock for this version
        and Python, the extras its input resolved, and whether airflow_dags_src is a directory."""
        locks = ROLES_DIR / "_airflow_common" / "files" / "constraints"
        version = values.get("airflow_version")
        lock_input = locks / f"airflow-{version}.in"
        dags_src = str(values.get("airflow_dags_src") or "")
        return {"lock_exists": (locks / f"airflow-{version}-python{python_minor}.txt").is_file(),
                "lock_extras": airflow_inputs.lock_extras(lock_input.read_text()) if lock_input.is_file() else None,
                "dags_src_is_dir": not dags_src or os.path.isdir(os.path.expanduser(dags_src)),
                "uv_lock_exists": (locks / f"uv-{values.get('airflow_uv_version')}.txt").is_file()}
