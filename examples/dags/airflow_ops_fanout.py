"""Fan 24 short tasks out over the Celery workers, then count where they ran.

Used by `make demo` and by the cluster scenario: the task instances' hostnames show which
worker ran each task.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from datetime import datetime

from airflow.sdk import dag, task

PARALLEL_TASKS = 24


@dag(
    dag_id="airflow_ops_fanout",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["airflow_ops", "example"],
    default_args={"retries": 2},
)
def airflow_ops_fanout():
    @task
    def work(number: int) -> str:
        time.sleep(3)
        host = socket.gethostname()
        print(f"task {number} ran on {host}")
        return host

    @task
    def where_they_ran(hosts: list[str]) -> dict[str, int]:
        counts = dict(Counter(hosts))
        print(f"tasks per worker: {counts}")
        return counts

    results = [work.override(task_id=f"work_{n:02d}")(n) for n in range(PARALLEL_TASKS)]
    where_they_ran(results)


airflow_ops_fanout()
