#!/usr/bin/env python3
"""Versioned runs of the Git DAG bundle across a push, run by side_effect.yml; the verifier judges.

The cluster's bundle git-dags follows main of /srv/git/dags.git on cl-outsider (prepare.yml pushed
molecule/cluster/git/airflow_ops_versions.py with RELEASE "v1"). This script:
1. waits until the DAG is parsed from that commit and starts run A, which holds at `gate`;
2. pushes RELEASE "v2" as a new commit and times how long until the api server shows the DAG at the
   new commit (push to visible, with the collection's default refresh interval);
3. releases run A (the Variable gate waits for) and waits for it: its 8 `after` tasks start after
   v2 is visible, on the workers, and must still run v1's code;
4. starts run B, which must run v2's;
5. stops the Git server's SSH until the dag-processor logs a failed fetch, reads the DAG (it must
   stay at v2, not stale), and starts SSH again.
For each run it records the state, bundle_version, and each task's returned "<release>@<host>".

    git_bundle.py OUT.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lib"))

from airflow_ops_testlib import AirflowApi, container_ip, use_cluster_ca, wait_for  # noqa: E402

DAG = "airflow_ops_versions"
SERVER, REPOSITORY, WORK = "cl-outsider", "/srv/git/dags.git", "/root/dags-work"
RELEASE_VARIABLE = "airflow_ops_versions_release"
ADMIN = ("admin", "molecule-Admin-Secret-1")


def on_server(command: str) -> str:
    return subprocess.run(["docker", "exec", SERVER, "sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout.strip()


def head() -> str:
    return on_server(f"git -C {REPOSITORY} rev-parse main")


def push(release: str) -> str:
    """Commit RELEASE = release and push it as root on the server; the new commit."""
    on_server(f"cd {WORK} && sed -i 's/^RELEASE = .*/RELEASE = \"{release}\"/' dags/{DAG}.py"
              f" && git -c user.name=molecule -c user.email=molecule@example.com commit -q -am {release}"
              f" && git push -q {REPOSITORY} main")
    return head()


def dag_version(api: AirflowApi) -> str | None:
    status, body = api.request("GET", f"/api/v2/dags/{DAG}")
    return body.get("bundle_version") if status == 200 else None


def trigger(api: AirflowApi, wait: bool) -> str:
    status, body = api.request("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"wait": wait}})
    assert status == 200, body
    return body["dag_run_id"]


def returned(api: AirflowApi, run_id: str, task_id: str):
    status, body = api.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    if status != 200:
        return None
    value = body.get("value")
    if isinstance(value, str) and value.startswith('"'):
        value = json.loads(value)
    return value


def record(api: AirflowApi, run_id: str) -> dict:
    run = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
    tasks = {ti["task_id"]: {"state": ti["state"], "hostname": ti["hostname"], "try_number": ti["try_number"],
                             "returned": returned(api, run_id, ti["task_id"])}
             for ti in api.task_instances(DAG, run_id)}
    return {"run_id": run_id, "state": run["state"], "bundle_version": run.get("bundle_version"),
            "dag_versions": [{"bundle_name": v.get("bundle_name"), "bundle_version": v.get("bundle_version"),
                              "version_number": v.get("version_number")} for v in run.get("dag_versions") or []],
            "tasks": tasks}


def git_down(api: AirflowApi) -> dict:
    """Stop the Git server's SSH until the dag-processor has failed a fetch: what it logged, and
    whether the DAG stayed at the last commit it fetched (not stale). Then start it again."""
    since = subprocess.run(["docker", "exec", "cl-scheduler", "date", "+%Y-%m-%d %H:%M:%S"], capture_output=True,
                           text=True, check=True).stdout.strip()
    on_server("systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    stopped = time.monotonic()
    try:
        def failed_fetch():
            journal = subprocess.run(["docker", "exec", "cl-scheduler", "journalctl", "-u", "airflow-dag-processor",
                                      "--since", since, "--no-pager"], capture_output=True, text=True, check=True).stdout
            return [line for line in journal.splitlines() if "Error refreshing bundle git-dags" in line]
        logged = wait_for("the dag-processor to log a failed fetch", failed_fetch, timeout=180, interval=3)
        seconds = round(time.monotonic() - stopped, 1)
        dag = api.get(f"/api/v2/dags/{DAG}")
    finally:
        on_server("systemctl start ssh")
    print(f"git down: the dag-processor logged a failed fetch after {seconds} s; the DAG stays at "
          f"{str(dag.get('bundle_version'))[:10]}")
    return {"logged": logged[:1], "seconds": seconds, "bundle_version": dag.get("bundle_version"),
            "is_stale": dag.get("is_stale")}


def main() -> int:
    out = Path(sys.argv[1])
    use_cluster_ca("cl-api")
    api = AirflowApi(f"https://{container_ip('cl-api')}:8080", *ADMIN)
    first = head()
    wait_for(f"{DAG} parsed at {first[:10]}", lambda: dag_version(api) == first, timeout=300)
    status, body = api.request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
    assert status == 200, body

    run_a = trigger(api, wait=True)
    wait_for("run A to hold at gate", lambda: api.task_instance(DAG, run_a, "gate")["state"] == "running", timeout=300)

    pushed_at = time.monotonic()
    second = push("v2")
    wait_for(f"{DAG} parsed at {second[:10]}", lambda: dag_version(api) == second, timeout=300, interval=1)
    visible = round(time.monotonic() - pushed_at, 1)
    print(f"push to visible: {visible} s")

    status, body = api.request("POST", "/api/v2/variables", {"key": RELEASE_VARIABLE, "value": run_a})
    assert status in (200, 201), body
    api.wait_for_run(DAG, run_a, timeout=600)
    run_b = trigger(api, wait=False)
    api.wait_for_run(DAG, run_b, timeout=600)

    result = {"commits": {"v1": first, "v2": second}, "push_to_visible_seconds": visible,
              "runs": {"A": record(api, run_a), "B": record(api, run_b)}, "git_down": git_down(api)}
    out.write_text(json.dumps(result, indent=2))
    for name, run in result["runs"].items():
        print(f"run {name}: {run['state']} at {str(run['bundle_version'])[:10]}: "
              + ", ".join(sorted({str(task['returned']) for task in run["tasks"].values()})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
