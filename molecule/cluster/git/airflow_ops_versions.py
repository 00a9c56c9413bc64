"""Which commit a run executes: the DAG of the cluster scenario's Git bundle (git-dags).

molecule/cluster/git_bundle.py pushes this file with RELEASE "v1", starts a run that waits at
`gate` until the Variable airflow_ops_versions_release holds its run id, pushes RELEASE "v2",
waits for the dag-processor to parse it, releases the run, then starts another. Each task returns
the RELEASE of the code it ran and the worker it ran on: the first run must say v1 throughout, the
second v2.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from airflow.sdk import Param, Variable, dag, task

RELEASE = "v1"
RELEASE_VARIABLE = "airflow_ops_versions_release"


@dag(
    dag_id="airflow_ops_versions",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["airflow_ops", "git"],
    params={"wait": Param(False, type="boolean")},
    default_args={"retries": 0},
)
def airflow_ops_versions():
    @task
    def first() -> str:
        return f"{RELEASE}@{socket.gethostname()}"

    @task
    def gate(**context) -> str:
        if not context["params"]["wait"]:
            return "not held"
        deadline = time.monotonic() + 600
        while Variable.get(RELEASE_VARIABLE, default=None) != context["run_id"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{RELEASE_VARIABLE} never named {context['run_id']}")
            time.sleep(2)
        return "released"

    @task
    def after() -> str:
        time.sleep(6)
        return f"{RELEASE}@{socket.gethostname()}"

    after_tasks = [after.override(task_id=f"after_{number}")() for number in range(8)]
    first() >> gate() >> after_tasks


airflow_ops_versions()
