"""Helpers shared by the molecule verifiers (testinfra tests run on the controller)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


def _load_plugin_utils(name):
    """A module of plugins/plugin_utils as the roles use it (redis_acl: the broker's users and their
    passwords; web_auth: the scrape logins of Prometheus)."""
    path = ROLES_DIR.parent / "plugins" / "plugin_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


redis_acl = _load_plugin_utils("redis_acl")
web_auth = _load_plugin_utils("web_auth")
# scripts/run-tests prints the lines written here after the scenario that wrote them (it names a
# file per scenario, as scenarios may run side by side).
FIGURES = Path(os.environ.get("AIRFLOW_OPS_FIGURES")
               or Path(__file__).resolve().parents[2] / ".cache" / "test-logs" / "figures.txt")


def record_figure(line: str) -> None:
    """Report something a test measured: run-tests prints it after the scenario."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a") as figures:
        figures.write(line + "\n")


PLAY = """---
- name: Apply {role} with the input under test
  hosts: {hosts}
  roles:
    - role: airflow_ops.celery.{role}
"""


# The test-only callback (callback_plugins/airflow_ops_events.py) that writes a run's plays, task
# results and stats as JSON lines: tests judge runs from these, the text output only shows a person
# what happened (and is where no secret may appear).
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"


def events_env(events_file: str | os.PathLike) -> dict[str, str]:
    """Environment for ansible-playbook that records its events into events_file."""
    return {"ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS), "ANSIBLE_CALLBACKS_ENABLED": "airflow_ops_events",
            "AIRFLOW_OPS_EVENTS": str(events_file)}


def read_events(events_file: str | os.PathLike) -> list[dict]:
    path = Path(events_file)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    events: list[dict] = field(default_factory=list)

    @property
    def results(self) -> list[dict]:
        """Every task result: play, host, task (as the output names it), role, action, status."""
        return [event for event in self.events if event["event"] == "result"]

    def _final_stats(self) -> dict | None:
        """{host: its counts} of the run's final stats; None when the run ended without stats."""
        stats = [event for event in self.events if event["event"] == "stats"]
        return stats[-1]["hosts"] if stats else None

    @property
    def changed(self) -> int:
        """Sum of changed over the hosts of the final stats; -1 when the run ended without stats."""
        stats = self._final_stats()
        return sum(host["changed"] for host in stats.values()) if stats is not None else -1

    @property
    def plays(self) -> list[str]:
        """The plays that started, in order."""
        return [event["play"] for event in self.events if event["event"] == "play"]

    def plays_that_ran_tasks(self) -> set[str]:
        return {result["play"] for result in self.results}

    def changed_tasks(self) -> set[tuple[str, str]]:
        """{(task, host)} of every result reported as changed."""
        return {(r["task"], r["host"]) for r in self.results if r["status"] == "changed"}

    def entries(self, role: str, tasks_from: str = "main") -> dict[str, int]:
        """{host: how many times it entered this entry point of a role (include_role, tasks_from)}."""
        counts: dict[str, int] = {}
        for event in self.events:
            if event["event"] == "include" and event.get("role") == role and event.get("tasks_from") == tasks_from:
                for host in event["hosts"]:
                    counts[host] = counts.get(host, 0) + 1
        return counts

    def error_of(self, host: str) -> str:
        """The errors of a host's failed results, whitespace collapsed (a long message may wrap)."""
        return " ".join(" ".join(r.get("error", "") for r in self.results if r["host"] == host and r["status"] == "failed").split())

    def changed_on(self, host: str) -> int:
        """changed in the final stats of one host; -1 when the run ended without stats or the host."""
        return (self._final_stats() or {}).get(host, {}).get("changed", -1)

    def results_of(self, task: str) -> dict[str, str]:
        """{host: status} of one task (the last time it ran per host)."""
        return {r["host"]: r["status"] for r in self.results if r["task"] == task}

    def slowest_tasks(self, count: int = 6) -> str:
        """The tasks that held the run longest, as "task (host) seconds; ...": each task's slowest
        host, the count slowest tasks first; the figure that says where a run's time went."""
        slowest: dict[str, tuple[float, str]] = {}
        for r in self.results:
            if r["seconds"] is not None and r["seconds"] > slowest.get(r["task"], (-1.0, ""))[0]:
                slowest[r["task"]] = (r["seconds"], r["host"])
        ranked = sorted(slowest.items(), key=lambda item: -item[1][0])[:count]
        return "; ".join(f"{task.split(' : ')[-1]} ({host}) {seconds:.0f} s" for task, (seconds, host) in ranked)


def side_effect(name: str) -> Path:
    """A file the cluster scenario's side_effect step wrote (runs' logs and events, records)."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "side_effect", name)


def side_effect_run(name: str, returncode: int | None = None) -> PlaybookRun:
    """A playbook run of that step: its exit code (NAME.rc unless a record gave it), output (NAME.log)
    and task results (NAME.events.jsonl)."""
    if returncode is None:
        returncode = int(side_effect(f"{name}.rc").read_text())
    return PlaybookRun(returncode, side_effect(f"{name}.log").read_text(), read_events(side_effect(f"{name}.events.jsonl")))


def run_role(role: str, hosts: str, extra_vars: dict) -> PlaybookRun:
    """Apply a role of the collection to hosts of the molecule inventory with only these inputs.

    The scenario's group_vars are left out, so the role sees exactly extra_vars: extra vars
    could override an input but never unset one.
    """
    return _run_play(role, hosts, _bare_inventory(os.environ["MOLECULE_INVENTORY_FILE"]), extra_vars)


def case_host(host: str, case: str) -> str:
    """The inventory name run_role_cases gives one case on host."""
    return f"{host}--{case}"


def run_role_cases(role: str, host: str, cases: dict[str, dict]) -> PlaybookRun:
    """Apply a role once for many sets of inputs: each case is a host of its own in one run (an
    alias of `host`, named by case_host, with the same connection), with only that case's inputs
    as its host vars. The scenario's group_vars are left out, as in run_role; each case fails or
    passes on its own, and one ansible-playbook start serves them all."""
    connection = dict(_bare_inventory(os.environ["MOLECULE_INVENTORY_FILE"])["all"]["hosts"][host])
    connection.setdefault("ansible_host", host)  # the container, whatever the alias
    inventory = {"all": {"hosts": {case_host(host, case): {**inputs, **connection} for case, inputs in cases.items()}}}
    return _run_play(role, "all", inventory)


def _run_play(role: str, hosts: str, inventory: dict, extra_vars: dict | None = None) -> PlaybookRun:
    """PLAY of the role on hosts of this inventory (a dict, written as JSON), with extra_vars if any."""
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp, "invalid.yml")
        playbook.write_text(PLAY.format(role=role, hosts=hosts))
        inventory_file = Path(tmp, "hosts.json")
        inventory_file.write_text(json.dumps(inventory))
        args = ["-i", str(inventory_file), str(playbook)]
        if extra_vars is not None:
            varfile = Path(tmp, "vars.json")
            varfile.write_text(json.dumps(extra_vars))
            args += ["-e", f"@{varfile}"]
        return _ansible_playbook(args, timeout=600)


def assert_case_refused(run: PlaybookRun, host: str, case: str, inputs: dict, expected: str) -> None:
    """One case of run_role_cases failed on its host with `expected` in its error (whitespace
    collapsed), changed nothing there, and the run printed none of the case's secrets."""
    name = case_host(host, case)
    assert run.returncode != 0, run.output[-3000:]
    error = run.error_of(name)
    assert expected.format(host=name) in error, error or run.output[-3000:]
    assert run.changed_on(name) == 0, run.output[-3000:]
    assert_no_secret_printed(inputs, run.output)


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
    return _ansible_playbook(["-i", os.environ["MOLECULE_INVENTORY_FILE"], *args], timeout=timeout)


def _ansible_playbook(args: list[str], timeout: int) -> PlaybookRun:
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp, "events.jsonl")
        proc = subprocess.run(["ansible-playbook", *args], capture_output=True, text=True, check=False, timeout=timeout,
                              env=dict(os.environ, **events_env(events)))
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, read_events(events))


def container_ip(name: str) -> str:
    """Address of a test container on its Docker network (reachable from the controller)."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()[0]


# The CA that https:// requests verify against (use_cluster_ca); None: the system's.
_CA_FILE: str | None = None


def use_cluster_ca(container: str) -> str:
    """Verify https:// from here on against the CA site_tls installed on container; its path."""
    global _CA_FILE
    pem = subprocess.run(["docker", "exec", container, "cat", "/etc/airflow-ops/tls/ca.crt"],
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.gettempdir(), f"airflow-ops-ca-{container}.crt")
    path.write_text(pem)
    _CA_FILE = str(path)
    return _CA_FILE


def http(method: str, url: str, body=None, token: str | None = None, basic: tuple[str, str] | None = None):
    """One request from the controller: (status, body), the body parsed when it is JSON.

    HTTP errors are returned, not raised, so tests can assert a 401 as easily as a 200. An
    https:// URL is verified, names included, against the CA of use_cluster_ca.
    """
    import base64
    import ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode())
    try:
        context = ssl.create_default_context(cafile=_CA_FILE) if url.startswith("https:") else None
        with urllib.request.urlopen(request, timeout=60, context=context) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(what: str, check, timeout: float = 300, interval: float = 3):
    """Poll check() until it returns something truthy; return that, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class AirflowApi:
    """The Airflow 3 REST API (/api/v2) of one api server, with a JWT from /auth/token."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        status, body = http("POST", f"{self.base_url}/auth/token", {"username": username, "password": password})
        assert status in (200, 201), f"no token for {username}: {status} {body}"
        self.token = body["access_token"]

    def request(self, method: str, path: str, body=None):
        """(status, body) of an authenticated request."""
        return http(method, self.base_url + path, body, token=self.token)

    def get(self, path: str):
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def trigger(self, dag_id: str) -> str:
        """Wait until the DAG is parsed, unpause it, start a run; returns the run id."""
        wait_for(f"{dag_id} to be parsed", lambda: self.request("GET", f"/api/v2/dags/{dag_id}")[0] == 200)
        status, body = self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert status == 200, body
        status, body = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
        assert status == 200, body
        return body["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict:
        """The run once it has finished (success or failed)."""
        def finished():
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout=timeout, interval=5)

    def run_dag(self, dag_id: str, timeout: float = 900) -> dict:
        return self.wait_for_run(dag_id, self.trigger(dag_id), timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def every_task_instance(self, dag_id: str) -> list[dict]:
        """The task instances of every run of the DAG (`~`: all runs), page by page."""
        found: list[dict] = []
        while True:
            page = self.get(f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?limit=100&offset={len(found)}")["task_instances"]
            found += page
            if len(page) < 100:
                return found

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as the api server serves it (fetched from the worker's log server)."""
        log = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}")
        return log if isinstance(log, str) else json.dumps(log)


def secret_inputs() -> set[str]:
    """Names of every input an argument spec marks no_log, in any role and entry point."""
    import yaml

    names: set[str] = set()
    for spec_file in ROLES_DIR.glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            names |= {name for name, option in (entry.get("options") or {}).items() if option.get("no_log")}
    return names


def assert_no_secret_printed(inputs: dict, output: str) -> None:
    """None of the inputs' secret values (found by their specs' no_log, valid or not) appears in output."""
    secrets = [str(value) for name, value in inputs.items() if name in secret_inputs() and str(value)]
    for secret in secrets:
        assert secret not in output, f"a secret input was printed: {secret[:3]}..."


def inventory_secrets(host: str) -> dict[str, str]:
    """{input name: value} of every secret input (no_log in a spec) the scenario's inventory sets
    for host, its templates resolved by ansible-inventory."""
    out = subprocess.run(
        ["ansible-inventory", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--host", host],
        capture_output=True,
        text=True,
        check=True,
    )
    host_vars = json.loads(out.stdout)
    names = secret_inputs()
    return {name: str(value) for name, value in host_vars.items() if name in names and str(value)}


def molecule_host(name: str):
    """Another host of the scenario's inventory than the one under test, as a testinfra host."""
    import testinfra  # only the verifiers need it, not the scripts that share this library

    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def host_address(host, name: str | None = None) -> str:
    """The address `name` (default: the host itself) resolves to on this testinfra host."""
    name = name or host.backend.get_hostname()
    return host.check_output(f"getent hosts {name} | cut -d' ' -f1")


def fetch_on(host, url: str) -> tuple[int, str]:
    """GET url from inside this testinfra host, with its standard library only: (status, body)."""
    script = (
        "import json, urllib.request\n"
        f"with urllib.request.urlopen({url!r}, timeout=10) as r:\n"
        "    print(json.dumps([r.status, r.read().decode()]))\n"
    )
    status, body = json.loads(host.check_output(f"python3 -c {shlex.quote(script)}"))
    return status, body


def unit_properties(host, unit: str, *names: str) -> dict[str, str]:
    """`systemctl show` of the named properties of a unit on this testinfra host."""
    shown = host.check_output(f"systemctl show {unit} " + " ".join(f"-p {name}" for name in names))
    return dict(line.split("=", 1) for line in shown.splitlines())


def listening(host, port: int, udp: bool = False) -> list[str]:
    """The addresses a port listens on, on this testinfra host."""
    return host.check_output(f"ss -H{'u' if udp else 't'}ln 'sport = :{port}' | awk '{{print $4}}'").split()


def assert_airflow_unit_runs_hardened(host, unit: str) -> None:
    """An Airflow component's unit runs and is enabled, as the airflow user, restarted on failure,
    with the collection's hardening (no new privileges, a read-only system)."""
    service = host.service(unit)
    assert service.is_running and service.is_enabled
    shown = unit_properties(host, unit, "User", "Restart", "NoNewPrivileges", "ProtectSystem")
    assert shown == {"User": "airflow", "Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict"}, shown


def airflow_component_units(host) -> list[str]:
    """The Airflow component units installed on this testinfra host (not the cleanup and ops helpers)."""
    units = host.check_output("systemctl list-unit-files --no-legend --plain 'airflow-*.service' | awk '{print $1}'").split()
    return sorted(u for u in units if not u.startswith(("airflow-cleanup-", "airflow-ops-")))


def assert_exporter_hardened_on_cluster_address(host, unit: str, port: int) -> None:
    """An exporter's unit runs and is enabled, as the unprivileged prometheus user with the Debian
    unit's hardening, and listens on the host's cluster address only."""
    service = host.service(unit)
    assert service.is_running and service.is_enabled
    shown = unit_properties(host, unit, "User", "NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet", "PrivateDevices")
    assert shown == {"User": "prometheus", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                     "CapabilityBoundingSet": "", "PrivateDevices": "yes"}, shown
    assert listening(host, port) == [f"{host_address(host)}:{port}"]
