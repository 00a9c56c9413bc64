#!/usr/bin/env python3
"""A rolling upgrade under load, run by side_effect.yml; the verifier judges the record.

    upgrade.py OUT.json LOG -- ansible-playbook ARGS...

Keeps the workers busy with runs of examples/dags/airflow_ops_hold.py (tasks that sleep), starting
another run whenever fewer than LOW_WATER tasks are queued or running, while the given
playbook (site.yml with a new airflow_version) runs; meanwhile asks every Celery worker every
few seconds, through the broker, which queues it consumes and how many tasks it runs (a small loop on
cl-broker). Afterwards waits for every run to end and writes: the playbook's exit code and
duration (its output goes to LOG), the samples, and every task's state, try and host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from drills import Cluster, api_health, sh, wait_for

TASKS_PER_RUN = 4
TASK_SECONDS = 40
# Start a new run when fewer tasks than this are queued or running: 5 to 8 tasks in flight on the
# workers' 12 slots, enough to keep every worker busy (each worker drains with tasks on it) without
# starting a task process every few seconds on hosts that are installing.
LOW_WATER = 5

# Runs on cl-broker (a Flower host: the Airflow install and the broker login in airflow.cfg), as
# airflow: a JSON line every 4 s or so, {worker: [consumed queues, active tasks]} for those that
# answered both broadcasts within 2 s each (generous: the hosts are busy installing).
SAMPLER = """
import json, sys, time
from airflow.providers.celery.executors.celery_executor import app
while True:
    started = time.time()
    inspect = app.control.inspect(timeout=2.0)
    try:
        queues = inspect.active_queues() or {}
        active = inspect.active() or {}
        sample = {name: [[q["name"] for q in queues[name]], len(active[name])] for name in queues if name in active}
        print(json.dumps({"t": started, "workers": sample}), flush=True)
    except Exception as err:
        print(json.dumps({"t": started, "error": repr(err)}), flush=True)
    time.sleep(max(0.0, 2.0 - (time.time() - started)))
"""


def sample(samples: list, stop: threading.Event) -> None:
    command = ["docker", "exec", "-i", "cl-broker", "runuser", "-u", "airflow", "--", "env", "AIRFLOW_HOME=/opt/airflow",
               "AIRFLOW_CONFIG=/etc/airflow/airflow.cfg", "/opt/airflow/venv/bin/python", "-"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(SAMPLER)
    proc.stdin.close()
    threading.Thread(target=lambda: stop.wait() or proc.kill(), daemon=True).start()
    for line in proc.stdout:
        try:
            samples.append(json.loads(line))
        except ValueError:
            continue


def watch_api(cluster: Cluster, outages: list, stop: threading.Event) -> None:
    """[start, end] of every stretch in which the api server's health endpoint did not answer."""
    down = None
    while not stop.is_set():
        now = time.time()
        if api_health(cluster):
            if down is not None:
                outages.append([down, now])
                down = None
        elif down is None:
            down = now
        stop.wait(1)
    if down is not None:
        outages.append([down, time.time()])


def first_tries(cluster: Cluster, tasks: dict) -> dict:
    """What became of the first try of each task that ran more than once (to tell why)."""
    found = {}
    for key, task in tasks.items():
        if task["try"] == 1:
            continue
        run_id, index = key[:-1].rsplit("[", 1)
        body = cluster.get(f"/api/v2/dags/airflow_ops_hold/dagRuns/{run_id}/taskInstances/hold/{index}/tries/1") or {}
        found[key] = {field: body.get(field) for field in ("state", "start_date", "end_date", "hostname")}
    return found


def in_flight(cluster: Cluster, runs: list[str]) -> int | None:
    """Tasks of the last runs not yet ended; None while the api server does not answer."""
    count = 0
    for run_id in runs[-3:]:
        body = cluster.get(f"/api/v2/dags/airflow_ops_hold/dagRuns/{run_id}/taskInstances?limit=100")
        if body is None:
            return None
        count += sum(1 for ti in body["task_instances"]
                     if ti["task_id"] == "hold" and ti["state"] in (None, "scheduled", "queued", "running"))
    return count


def main() -> int:
    out, log = Path(sys.argv[1]), Path(sys.argv[2])
    playbook = sys.argv[sys.argv.index("--") + 1:]
    cluster = Cluster()
    runs = [cluster.start(tasks=TASKS_PER_RUN, seconds=TASK_SECONDS)]
    cluster.wait_holds(runs[0], TASKS_PER_RUN, "running", timeout=300)

    samples: list = []
    stop = threading.Event()
    threading.Thread(target=sample, args=(samples, stop), daemon=True).start()
    wait_for("the first sample", lambda: samples, timeout=120, interval=1)
    outages: list = []
    threading.Thread(target=watch_api, args=(cluster, outages, stop), daemon=True).start()

    started = time.time()
    with log.open("w") as fh:
        proc = subprocess.Popen(playbook, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            # The api server restarts during the upgrade: then try again a little later.
            try:
                count = in_flight(cluster, runs)
                if count is not None and count < LOW_WATER:
                    runs.append(cluster.start(tasks=TASKS_PER_RUN, seconds=TASK_SECONDS))
            except (AssertionError, OSError) as err:
                print(f"feeding: {err}", flush=True)
            time.sleep(10)
    seconds = round(time.time() - started, 1)
    # A little after the playbook, so the last worker's restart shows as consuming again.
    time.sleep(5)
    stop.set()

    tasks = {}
    for run_id in runs:
        summary = cluster.summary(run_id, started)
        for key in summary["states"]:
            tasks[f"{run_id}[{key}]"] = {
                "state": summary["states"][key],
                "try": summary["tries"][key],
                "host": summary["hosts"][key],
            }
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
    scheduler_log = sh("cl-scheduler", f"TZ=UTC journalctl -u airflow-scheduler --since '{since}' --no-pager -o cat"
                       " | grep -iE 'heartbeat|orphan|adopt|reset|up_for_retry' | tail -n 40", check=False)
    record = {
        "rc": proc.returncode,
        "api_outages": outages,
        "first_tries": first_tries(cluster, tasks),
        "scheduler_log": scheduler_log.splitlines(),
        "playbook_seconds": seconds,
        "playbook_started": started,
        "runs": runs,
        "tasks": tasks,
        "samples": samples,
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"upgrade: rc {proc.returncode} in {seconds} s, {len(runs)} runs, {len(tasks)} tasks, {len(samples)} samples", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
