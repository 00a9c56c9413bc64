"""A running task survives a restart of its worker (warm shutdown). Run by side_effect.yml: it
restarts the worker."""

import time

import pytest

from airflow_ops_testlib import AirflowApi, container_ip, wait_for

FIRST = "af-airflow-debian12"
testinfra_hosts = [f"ansible://{FIRST}"]
ADMIN_PASSWORD = "molecule-Admin-Secret-1"


@pytest.fixture(scope="module")
def api():
    return AirflowApi(f"http://{container_ip(FIRST)}:8080", "admin", ADMIN_PASSWORD)


def test_running_task_survives_worker_restart(host, api):
    """Warm shutdown: systemctl restart waits for the 60 s task, which then ends success, first try."""
    dag_id, task_id = "molecule_sleep_60", "sleep_60"
    run_id = api.trigger(dag_id)
    wait_for("the 60 s task to run", lambda: api.task_instance(dag_id, run_id, task_id)["state"] == "running", timeout=180, interval=1)
    time.sleep(5)
    started = time.monotonic()
    host.run_expect([0], "systemctl restart airflow-worker")
    waited = time.monotonic() - started
    assert waited > 20, f"the restart returned after {waited:.0f}s: the worker did not wait for its task"
    run = api.wait_for_run(dag_id, run_id, timeout=300)
    ti = api.task_instance(dag_id, run_id, task_id)
    assert run["state"] == "success", ti
    assert ti["try_number"] == 1, ti
    assert host.service("airflow-worker").is_running
