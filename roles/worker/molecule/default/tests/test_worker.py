"""The worker role alone (no scheduler, api server or Flower on the host): its unit runs as the
airflow user and drains on stop; through the broker it answers, consumes the queues it was given
with the concurrency it was given; its log server wants a token; it holds only the secrets a
worker needs. Observes only."""

import json
import shlex

import pytest

from airflow_ops_testlib import airflow_component_units, assert_airflow_unit_runs_hardened, redis_acl, unit_properties, wait_for

CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
AS_AIRFLOW = ("runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
              "/opt/airflow/venv/bin/python -c ")
# What the scheduler and Flower ask a worker through the broker.
INSPECT = f"""
import json
from {CELERY_APP.rsplit('.', 1)[0]} import app
inspect = app.control.inspect(timeout=5.0)
print(json.dumps({{"ping": inspect.ping(), "queues": inspect.active_queues(), "stats": inspect.stats()}}))
"""


@pytest.fixture(scope="module")
def node(host):
    return host.backend.get_hostname()


@pytest.fixture(scope="module")
def answers(host, node):
    """The worker's answers to ping, active_queues and stats, once it has answered all three."""
    def ask():
        out = host.run(AS_AIRFLOW + shlex.quote(INSPECT))
        assert out.rc == 0, out.stderr
        body = json.loads(out.stdout.splitlines()[-1])
        return body if all(body[key] and f"celery@{node}" in body[key] for key in body) else None
    body = wait_for("the worker's answers", ask, timeout=120, interval=5)
    return {key: value[f"celery@{node}"] for key, value in body.items()}


def test_the_worker_runs_as_an_enabled_unit_of_the_airflow_user(host):
    assert_airflow_unit_runs_hardened(host, "airflow-worker")


def test_only_the_worker_is_installed(host):
    components = airflow_component_units(host)
    assert components == ["airflow-worker.service"], components


def test_a_stop_waits_for_running_tasks_up_to_worker_stop_timeout(host):
    """systemd's stop sends SIGTERM to the main process only (a warm shutdown: Celery finishes the
    running tasks) and kills what is left only after worker_stop_timeout (240 s here)."""
    shown = unit_properties(host, "airflow-worker", "KillMode", "KillSignal", "TimeoutStopUSec")
    assert shown == {"KillMode": "mixed", "KillSignal": "15", "TimeoutStopUSec": "4min"}, shown


def test_the_worker_answers_through_the_broker(answers):
    assert answers["ping"] == {"ok": "pong"}


def test_the_worker_consumes_its_queues_with_its_concurrency(answers):
    assert sorted(queue["name"] for queue in answers["queues"]) == ["default", "wk-reports"]
    assert answers["stats"]["pool"]["max-concurrency"] == 3, answers["stats"]["pool"]


def test_the_log_server_wants_a_token(host):
    """The worker serves task logs to the api server on 8793, only with a JWT signed by the
    cluster's secret."""
    script = ("import urllib.request, urllib.error\n"
              "try:\n"
              "    urllib.request.urlopen('http://127.0.0.1:8793/log/dag_id=x/run_id=y/task_id=z/attempt=1.log', timeout=10)\n"
              "    print(200)\n"
              "except urllib.error.HTTPError as err:\n"
              "    print(err.code)\n")
    assert host.check_output(f"python3 -c {shlex.quote(script)}") == "403"


def test_the_worker_holds_no_metadata_database_password(host):
    """Task code on a worker reads airflow.cfg: it has the broker's `worker` login and the result
    backend's, not the metadata database's (the postgresql role on this host has it in the
    inventory) nor the broker's admin password."""
    config = host.check_output("cat /etc/airflow/airflow.cfg")
    worker_login = f"://worker:{redis_acl.user_password('molecule-broker-Secret-1', 'worker')}@"
    assert "molecule-results-Secret-2" in config and worker_login in config
    assert "molecule-db-Secret-1" not in config and "molecule-broker-Secret-1" not in config
