"""Hold worker slots: `tasks` tasks that each sleep `seconds` (run conf, defaults 3 and 40).

For watching what the cluster does when something fails while tasks run: the cluster scenario's
fault drills kill workers, Redis, PostgreSQL, the scheduler and the api server under it. Retries
and their delay come from the cluster's defaults (airflow_default_task_retry_delay).
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from airflow.sdk import Param, dag, task


@dag(
    dag_id="airflow_ops_hold",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["airflow_ops", "example"],
    params={"tasks": Param(3, type="integer", minimum=1), "seconds": Param(40, type="integer", minimum=0)},
    default_args={"retries": 2},
)
def airflow_ops_hold():
    @task
    def plan(**context) -> list[int]:
        params = context["params"]
        return [params["seconds"]] * params["tasks"]

    @task
    def hold(seconds: int) -> str:
        host = socket.gethostname()
        print(f"holding a slot on {host} for {seconds} s")
        time.sleep(seconds)
        return host

    hold.expand(seconds=plan())


airflow_ops_hold()
