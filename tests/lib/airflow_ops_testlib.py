"""Helpers shared by the molecule verifiers (testinfra tests run on the controller)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
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


def run_playbook(*args: str, timeout: int = 1800) -> PlaybookRun:
    """ansible-playbook with the scenario's inventory (its group_vars included) and these args."""
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)


def container_ip(name: str) -> str:
    """Address of a test container on its Docker network (reachable from the controller)."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()[0]


class AirflowApi:
    """The Airflow 3 REST API (/api/v2) with a JWT from /auth/token."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        token = self._call("POST", "/auth/token", {"username": username, "password": password})
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def _call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None, raw: bool = False):
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        return text if raw else json.loads(text)

    def get(self, path: str, raw: bool = False):
        return self._call("GET", path, headers=self.headers, raw=raw)

    def wait_for_dag(self, dag_id: str, timeout: int = 300) -> None:
        import urllib.error

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError as err:
                if err.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(5)

    def run_dag(self, dag_id: str, timeout: int = 900) -> dict:
        """Unpause, trigger and wait for a run; returns the finished run."""
        self.wait_for_dag(dag_id)
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, headers=self.headers)
        run = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}, headers=self.headers)
        deadline = time.monotonic() + timeout
        while run["state"] not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run['dag_run_id']} still {run['state']} after {timeout}s")
            time.sleep(5)
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}", raw=True)
