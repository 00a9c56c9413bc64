#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Module airflow_ops.celery.host_state: what a role needs to know about a host, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Read stamps and ask systemd about units, in one call
version_added: "0.1.0"
description:
  - One round trip instead of a C(slurp) or C(systemctl) task each; changes nothing.
  - Returns the content of small files (the collection's stamps) and each
    unit's load, active and enabled state from one C(systemctl show).
options:
  read:
    description: Files whose text is returned (at most 64 KiB each); a missing file gives null.
    type: list
    elements: path
    default: []
  units:
    description: systemd units (full names, e.g. C(airflow-worker.service)) whose state is returned.
    type: list
    elements: str
    default: []
author:
  - airflow_ops.celery contributors
"""

EXAMPLES = r"""
- name: Read this host's install stamp and unit states
  airflow_ops.celery.host_state:
    read: [/opt/airflow/venvs/3.1.3-abc/.airflow-ops-install]
    units: [airflow-worker.service]
  register: state
"""

RETURN = r"""
files:
  description: Path to text (null when the file does not exist).
  returned: always
  type: dict
units:
  description: >-
    Unit to C(load) (C(loaded), C(not-found), ...), C(active) (C(active), C(inactive), C(failed), ...),
    C(sub) (C(running), C(dead), ...), C(enabled) (C(enabled), C(disabled), empty when there is no unit
    file) and C(running) (enabled and active).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

MAX_READ = 64 * 1024
PROPERTIES = "Id,LoadState,ActiveState,SubState,UnitFileState"


def read_files(paths):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_READ + 1)
        except FileNotFoundError:
            out[path] = None
            continue
        if len(data) > MAX_READ:
            raise ValueError("%s is larger than %d bytes" % (path, MAX_READ))
        out[path] = data.decode("utf-8", errors="replace")
    return out


def parse_show(text, units):
    """`systemctl show` output (blocks separated by an empty line) as a dict per unit asked for;
    blocks of other units are ignored, and a unit asked for without a block counts as not found."""
    blocks = [block for block in text.strip().split("\n\n") if block.strip()]
    out = {}
    for block in blocks:
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        name = props.get("Id")
        if name not in units:
            continue
        active, enabled = props.get("ActiveState", ""), props.get("UnitFileState", "")
        out[name] = {"load": props.get("LoadState", ""), "active": active, "sub": props.get("SubState", ""),
                     "enabled": enabled, "running": active == "active" and enabled == "enabled"}
    for name in units:  # systemd names a unit by its Id; one it does not know still gets a block
        out.setdefault(name, {"load": "not-found", "active": "inactive", "sub": "dead", "enabled": "",
                              "running": False})
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(read=dict(type="list", elements="path", default=[]),
                           units=dict(type="list", elements="str", default=[])),
        supports_check_mode=True,
    )
    params = module.params
    try:
        files = read_files(params["read"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="host_state: %s" % exc)
    units = {}
    if params["units"]:
        systemctl = module.get_bin_path("systemctl", required=True)
        rc, out, err = module.run_command([systemctl, "show", "--property=" + PROPERTIES, "--"] + params["units"])
        if rc != 0:
            module.fail_json(msg="host_state: systemctl show failed: %s" % err.strip())
        units = parse_show(out, params["units"])
    module.exit_json(changed=False, files=files, units=units)


if __name__ == "__main__":
    main()
