# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.retire_plan: what retiring the components a host left means on it.

The shared Airflow setup's `retire` entry point (site.yml when a host left a group, and the
decommission playbook) applies the answer: which units to ask systemd about, which to stop,
disable and remove, which files go with them, and whether the worker drains first."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: retire_plan
short_description: The units and files of the Airflow components a host no longer runs
version_added: "0.1.0"
description:
  - From the components' units, the components the host keeps and what systemd said of the units
    (C(airflow_ops.celery.host_state)), returns C(units) (every unit of a component the host left),
    C(unknown) (those of them systemd was not asked about yet), C(retired) (those with a unit file
    of this collection, C(/etc/systemd/system/); unit names without C(.service)), C(files) (those
    unit files, then the component's own files) and C(drain) (whether the worker is among the
    retired and active, so it finishes its running tasks before it stops).
options:
  _input:
    description: Component to unit name (without C(.service)).
    type: dict
    required: true
  kept:
    description: The components the host keeps.
    type: list
    elements: str
    required: true
  unit_state:
    description: What C(host_state) returned as C(units), by full unit name.
    type: dict
    required: true
  component_files:
    description: Component to the files it has besides airflow.cfg, removed with its unit.
    type: dict
    default: {}
"""

EXAMPLES = r"""
__airflow_common_retire: >-
  {{ __airflow_common_component_units | airflow_ops.celery.retire_plan(_airflow_common_components_kept,
     __airflow_common_unit_state, __airflow_common_component_files) }}
"""

RETURN = r"""
_value:
  description: C(units), C(unknown), C(retired), C(files) and C(drain), as described above.
  type: dict
"""

UNIT_DIR = "/etc/systemd/system/"
WORKER = "worker"


def retire_plan(component_units, kept, unit_state, component_files=None):
    if not isinstance(component_units, dict) or not isinstance(unit_state, dict):
        raise AnsibleFilterError("retire_plan takes a dict of component units and the units host_state returned.")
    left = [component for component in component_units if component not in (kept or [])]
    units = [f"{component_units[component]}.service" for component in left]
    unit_files = {unit: (unit_state.get(unit) or {}).get("path") or "" for unit in units}
    retired_units = [unit for unit in units if unit_files[unit].startswith(UNIT_DIR)]
    worker_unit = f"{component_units[WORKER]}.service" if WORKER in left else None
    files = [unit_files[unit] for unit in retired_units]
    for component in left:
        files.extend((component_files or {}).get(component) or [])
    return {
        "units": units,
        "unknown": [unit for unit in units if unit not in unit_state],
        "retired": [unit[: -len(".service")] for unit in retired_units],
        "files": files,
        "drain": worker_unit in retired_units and (unit_state.get(worker_unit) or {}).get("active") == "active",
    }


class FilterModule:
    def filters(self):
        return {"retire_plan": retire_plan}
