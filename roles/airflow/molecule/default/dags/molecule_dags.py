"""DAGs the molecule verifier triggers through the Celery worker. retries=0: a killed task fails."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="molecule_celery_smoke", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["molecule"]):
    BashOperator(task_id="hello", bash_command="echo hello from $(hostname)", retries=0)

with DAG(dag_id="molecule_sleep_60", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["molecule"]):
    BashOperator(task_id="sleep_60", bash_command="sleep 60 && echo slept", retries=0, queue="molecule")
