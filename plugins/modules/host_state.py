#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Module airflow_ops.celery.host_state: what a role needs to know about a host, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Read stamps, links, accounts, packages and unit states, in one call
version_added: "0.1.0"
description:
  - One round trip instead of a C(slurp), C(stat), C(systemctl), C(find) or package task each;
    changes nothing. The roles then run a task that would change something only where the answer
    says it must (a package is missing, the account differs, a link points elsewhere).
  - Returns the content of small files (the collection's stamps), the targets of symbolic links,
    the local users and groups asked for, the installed versions of Debian packages (one
    C(dpkg-query)) and each unit's load, active and enabled state and unit file (one C(systemctl show)).
options:
  read:
    description: Files whose text is returned (at most 64 KiB each); a missing file gives null.
    type: list
    elements: path
    default: []
  links:
    description: Paths whose symbolic link target is returned (null when the path is not a link).
    type: list
    elements: path
    default: []
  users:
    description: Local users (from the password database) whose primary group, home and shell are returned.
    type: list
    elements: str
    default: []
  groups:
    description: Local groups whose GID is returned.
    type: list
    elements: str
    default: []
  packages:
    description: Debian packages whose installed version is returned (null when not installed).
    type: list
    elements: str
    default: []
  units:
    description: systemd units (full names, e.g. C(airflow-worker.service)) whose state is returned.
    type: list
    elements: str
    default: []
author:
  - airflow_ops maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read this host's install stamp and unit states
  airflow_ops.celery.host_state:
    read: [/opt/airflow/venvs/3.1.3-abc/.airflow-ops-install]
    links: [/opt/airflow/venv]
    users: [airflow]
    groups: [airflow]
    packages: [python3-venv]
    units: [airflow-worker.service]
  register: state
"""

RETURN = r"""
files:
  description: Path to text (null when the file does not exist).
  returned: always
  type: dict
links:
  description: Path to the link's target (null when the path is missing or not a link).
  returned: always
  type: dict
users:
  description: User to C(group) (primary group's name), C(home) and C(shell); null when there is no such user.
  returned: always
  type: dict
groups:
  description: Group to C(gid); null when there is no such group.
  returned: always
  type: dict
packages:
  description: Package to its installed version; null when it is not installed.
  returned: always
  type: dict
missing_packages:
  description: The packages asked for that are not installed, in the order asked (what an install task needs to install).
  returned: always
  type: list
  elements: str
units:
  description: >-
    Unit to C(load) (C(loaded), C(not-found), ...), C(active) (C(active), C(inactive), C(failed), ...),
    C(sub) (C(running), C(dead), ...), C(enabled) (C(enabled), C(disabled), empty when there is no unit
    file), C(running) (enabled and active), C(stopped) (C(inactive) or C(failed): nothing runs that a
    restart or a batch would need to wait for) and C(path) (the unit file systemd loaded, empty when none).
  returned: always
  type: dict
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

MAX_READ = 64 * 1024
PROPERTIES = "Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath"
# ActiveState values of a unit that runs nothing (not activating, deactivating or reloading).
STOPPED = ("inactive", "failed")
# dpkg-query's line per package: name, status abbreviation ("ii " when installed), version.
DPKG_FORMAT = "${Package}\t${db:Status-Abbrev}\t${Version}\n"


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
                     "enabled": enabled, "running": active == "active" and enabled == "enabled",
                     "stopped": active in STOPPED, "path": props.get("FragmentPath", "")}
    for name in units:  # systemd names a unit by its Id; one it does not know still gets a block
        out.setdefault(name, {"load": "not-found", "active": "inactive", "sub": "dead", "enabled": "",
                              "running": False, "stopped": True, "path": ""})
    return out


def read_links(paths):
    out = {}
    for path in paths:
        try:
            out[path] = os.readlink(path)
        except OSError:  # missing, or not a link
            out[path] = None
    return out


def read_users(names):
    out = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            out[name] = None
            continue
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
        out[name] = {"group": group, "home": entry.pw_dir, "shell": entry.pw_shell}
    return out


def read_groups(names):
    out = {}
    for name in names:
        try:
            out[name] = {"gid": grp.getgrnam(name).gr_gid}
        except KeyError:
            out[name] = None
    return out


def parse_dpkg(text, packages):
    """dpkg-query -W output (DPKG_FORMAT) as {package: installed version or None}: a package dpkg
    knows but has not installed (removed, config files left, half installed) counts as missing."""
    out = dict.fromkeys(packages)
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0] in out and fields[1].strip() == "ii":
            out[fields[0]] = fields[2]
    return out


def missing(packages):
    """The packages of a parse_dpkg result that are not installed, in the order asked."""
    return [name for name, version in packages.items() if version is None]


def main():
    module = AnsibleModule(
        argument_spec=dict(read=dict(type="list", elements="path", default=[]),
                           links=dict(type="list", elements="path", default=[]),
                           users=dict(type="list", elements="str", default=[]),
                           groups=dict(type="list", elements="str", default=[]),
                           packages=dict(type="list", elements="str", default=[]),
                           units=dict(type="list", elements="str", default=[])),
        supports_check_mode=True,
    )
    params = module.params
    try:
        files = read_files(params["read"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="host_state: %s" % exc)
    packages = {}
    if params["packages"]:
        dpkg_query = module.get_bin_path("dpkg-query", required=True)
        # Exit code 1 when one of them is unknown to dpkg: the others are still listed.
        rc, out, err = module.run_command([dpkg_query, "-W", "-f=" + DPKG_FORMAT, "--"] + params["packages"])
        if rc not in (0, 1):
            module.fail_json(msg="host_state: dpkg-query failed: %s" % err.strip())
        packages = parse_dpkg(out, params["packages"])
    units = {}
    if params["units"]:
        systemctl = module.get_bin_path("systemctl", required=True)
        rc, out, err = module.run_command([systemctl, "show", "--property=" + PROPERTIES, "--"] + params["units"])
        if rc != 0:
            module.fail_json(msg="host_state: systemctl show failed: %s" % err.strip())
        units = parse_show(out, params["units"])
    module.exit_json(changed=False, files=files, links=read_links(params["links"]), users=read_users(params["users"]),
                     groups=read_groups(params["groups"]), packages=packages, missing_packages=missing(packages), units=units)


if __name__ == "__main__":
    main()
