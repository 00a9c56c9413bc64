"""Allocate memory in a task, then run one more on the same worker: what a worker's memory bound does.

`allocate` holds `mib` MiB (run conf, default 64) for a few seconds. Past the worker's bound
(worker_memory_max) the kernel kills it (SIGKILL) and its task instance fails, without retries;
`after` runs whatever happened (trigger rule all_done) and returns its host, which shows that the
worker kept serving. The cluster scenario's out-of-memory drill runs it; docs/sizing.md explains.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from airflow.sdk import Param, dag, task

MIB = 1 << 20


@dag(
    dag_id="airflow_ops_memory",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["airflow_ops", "example"],
    params={"mib": Param(64, type="integer", minimum=1)},
    default_args={"retries": 0},
)
def airflow_ops_memory():
    @task
    def allocate(**context) -> str:
        blocks = []
        for number in range(context["params"]["mib"]):
            blocks.append(bytes([number % 251 + 1]) * MIB)  # written, so every page is resident
        time.sleep(5)
        return f"{socket.gethostname()} held {len(blocks)} MiB"

    @task(trigger_rule="all_done")
    def after() -> str:
        return socket.gethostname()

    allocate() >> after()


airflow_ops_memory()
