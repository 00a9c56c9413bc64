"""Helpers shared by the molecule verifiers (testinfra tests run on the controller)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PLAY = """---
- name: Apply {role} with the input under test
  hosts: {hosts}
  roles:
    - role: airflow_ops.celery.{role}
"""


@dataclass
class PlaybookRun:
    returncode: int
    output: str

    @property
    def changed(self) -> int:
        """Sum of changed= over the play recap; -1 when there is no recap."""
        counts = re.findall(r"\bchanged=(\d+)", self.output)
        return sum(map(int, counts)) if counts else -1


def run_role(role: str, hosts: str, extra_vars: dict) -> PlaybookRun:
    """Apply a role of the collection to hosts of the molecule inventory with only these inputs.

    The scenario's group_vars are left out, so the role sees exactly extra_vars: extra vars
    could override an input but never unset one.
    """
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp, "invalid.yml")
        playbook.write_text(PLAY.format(role=role, hosts=hosts))
        bare_inventory = Path(tmp, "hosts.json")
        bare_inventory.write_text(json.dumps(_bare_inventory(inventory)))
        varfile = Path(tmp, "vars.json")
        varfile.write_text(json.dumps(extra_vars))
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(bare_inventory), str(playbook), "-e", f"@{varfile}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)


def _bare_inventory(inventory_file: str) -> dict:
    """The molecule inventory's hosts and their connection settings, without any group_vars."""
    out = subprocess.run(
        ["ansible-inventory", "-i", inventory_file, "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    full = json.loads(out.stdout)
    hostvars = full.get("_meta", {}).get("hostvars", {})
    keep = ("ansible_connection", "ansible_host", "ansible_docker_extra_args", "ansible_python_interpreter")
    return {
        "all": {
            "hosts": {
                name: {k: v for k, v in hv.items() if k in keep}
                for name, hv in hostvars.items()
            }
        }
    }
