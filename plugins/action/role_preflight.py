# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of airflow_ops.celery.role_preflight: checks one role's inputs on the controller
(plugins/plugin_utils/role_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.errors import AnsibleUndefinedVariable
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.airflow_ops.celery.plugins.plugin_utils import role_inputs

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
        spec = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
        values = {}
        for name in spec["argument_specs"]["main"].get("options", {}):
            if name not in task_vars:
                continue
            try:
                # Resolved by name, as a task of the role sees it.
                values[name] = self._templar.template(trust_as_template("{{ %s }}" % name))
            except AnsibleUndefinedVariable:
                values[name] = None  # a reference to an undefined (vault) variable: the check reports it
        context = dict(args.get("context") or {}, host=task_vars.get("inventory_hostname"))
        errors = role_inputs.CHECKS[role](values, context)
        if errors:
            return dict(result, failed=True, changed=False, errors=errors, msg=" ".join(errors))
        return dict(result, changed=False, msg=f"The {role} inputs of this host are fine.")
