"""The cluster as its users see it: DAG runs spread over the workers, logs readable through the
api server, Flower behind a password, and a new worker joining without restarting anything else."""

import os
import tempfile
from pathlib import Path

import pytest
import testinfra

from airflow_ops_testlib import AirflowApi, container_ip, http, run_playbook, wait_for

# The checks run from the controller; one host keeps pytest from repeating them per host.
testinfra_hosts = ["ansible://cl-api"]

DAG = "airflow_ops_fanout"
FLOWER_AUTH = ("ops", "molecule-Flower-Secret-1")
SERVICE_HOSTS = ["cl-broker", "cl-db", "cl-scheduler", "cl-api", "cl-worker1", "cl-worker2"]
SITE = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], "site.yml")


def remote(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def api():
    return AirflowApi(f"http://{container_ip('cl-api')}:8080", "admin", "molecule-Admin-Secret-1")


@pytest.fixture(scope="module")
def first_run(api):
    run = api.run_dag(DAG)
    return run, api.task_instances(DAG, run["dag_run_id"])


def flower_workers(auth=FLOWER_AUTH):
    """Flower's /api/workers: (status, workers by name)."""
    return http("GET", f"http://{container_ip('cl-broker')}:5555/api/workers?refresh=1", basic=auth)


def in_flower(name):
    status, workers = flower_workers()
    return status == 200 and any(name in worker for worker in workers)


def unit_start_times():
    """ActiveEnterTimestamp of every Airflow, Redis and PostgreSQL unit on the service hosts."""
    times = {}
    for name in SERVICE_HOSTS:
        host = remote(name)
        units = host.check_output(
            "systemctl list-units --type=service --state=active --no-legend --plain "
            "'airflow-*' 'redis-server*' 'postgresql@*' | awk '{print $1}'"
        ).split()
        for unit in units:
            times[f"{name}/{unit}"] = host.check_output(f"systemctl show -p ActiveEnterTimestamp --value {unit}")
    return times


def test_dag_run_succeeds_on_both_workers(first_run):
    run, tasks = first_run
    assert run["state"] == "success", tasks
    work = [t for t in tasks if t["task_id"].startswith("work_")]
    assert len(work) >= 20
    assert all(t["state"] == "success" for t in work)
    assert {"cl-worker1", "cl-worker2"} <= {t["hostname"] for t in work}


def test_task_logs_from_each_worker_are_readable_through_the_api_server(api, first_run):
    run, tasks = first_run
    for worker in ("cl-worker1", "cl-worker2"):
        task = next(t for t in tasks if t["hostname"] == worker and t["task_id"].startswith("work_"))
        log = api.task_log(DAG, run["dag_run_id"], task["task_id"])
        assert f"ran on {worker}" in log, log[:2000]


def test_flower_lists_both_workers_with_credentials():
    for name in ("cl-worker1", "cl-worker2"):
        assert in_flower(name), flower_workers()


def test_flower_refuses_requests_without_credentials():
    status, _ = flower_workers(auth=None)
    assert status == 401


def run_site_with(inventory_yaml, *args):
    """site.yml over the scenario's inventory plus an inventory fragment (what a user edits)."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp, "extra.yml")
        extra.write_text(inventory_yaml)
        return run_playbook(str(SITE), "-i", str(extra), *args)


@pytest.mark.parametrize(
    ("inventory_yaml", "expected"),
    [
        ("all:\n  children:\n    redis:\n      hosts:\n        cl-worker3:\n", "exactly one host in `redis` (has 2)"),
        ("all:\n  children:\n    workers:\n      hosts:\n        cl-worker3:\n          airflow_jwt_secret: ''\n",
         "airflow_jwt_secret is not set for cl-worker3"),
    ],
    ids=["two-brokers", "empty-secret"],
)
def test_wrong_inventory_fails_before_any_change(inventory_yaml, expected):
    result = run_site_with(inventory_yaml)
    assert result.returncode != 0
    assert expected in " ".join(result.output.split()), result.output[-3000:]
    assert result.changed == 0, result.output[-3000:]


def test_new_worker_joins_with_limit_and_nothing_else_restarts(api):
    before = unit_start_times()
    assert any("/airflow-" in unit for unit in before)
    result = run_site_with("all:\n  children:\n    workers:\n      hosts:\n        cl-worker3:\n", "--limit", "cl-worker3")
    assert result.returncode == 0, result.output[-5000:]

    wait_for("cl-worker3 in Flower", lambda: in_flower("cl-worker3"), timeout=120, interval=5)
    ping = remote("cl-worker3").run(
        "runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
        "/opt/airflow/venv/bin/celery --app airflow.providers.celery.executors.celery_executor.app "
        "inspect ping --destination celery@cl-worker3 --timeout 10"
    )
    assert "pong" in ping.stdout, ping.stdout + ping.stderr

    run = api.run_dag(DAG)
    assert run["state"] == "success"
    hosts = {t["hostname"] for t in api.task_instances(DAG, run["dag_run_id"]) if t["task_id"].startswith("work_")}
    assert "cl-worker3" in hosts, hosts

    assert unit_start_times() == before
