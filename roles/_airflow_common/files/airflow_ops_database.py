# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Connection arguments airflow.cfg names by import path ([database] sql_alchemy_connect_args_async).

Installed by airflow_ops.celery as /opt/airflow/config/airflow_ops_database.py (root's, read-only
for the components; Airflow puts AIRFLOW_HOME/config on sys.path).

The api server's async engine runs on psycopg 3 (sql_alchemy_conn_async = postgresql+psycopg://).
psycopg 3 turns a query it has run five times into a named server-side prepared statement; behind a
transaction pooler (PgBouncer, pool_mode = transaction) the next transaction may run on another
server connection that does not know the statement, and fails. prepare_threshold None never
prepares. (Airflow 3.3's default async driver, asyncpg, always prepares: apache/airflow#67801.)
"""

ASYNC_CONNECT_ARGS = {"prepare_threshold": None}
