"""DAGs the molecule verifier triggers through the Celery worker. retries=0: a killed task fails."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="molecule_celery_smoke", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["molecule"]):
    BashOperator(task_id="hello", bash_command="echo hello from $(hostname)", retries=0)

# The same task on the worker's second queue (worker_queues).
with DAG(dag_id="molecule_queue", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["molecule"]):
    BashOperator(task_id="hello", bash_command="echo hello from $(hostname)", retries=0, queue="molecule")
