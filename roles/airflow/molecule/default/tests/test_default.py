"""The whole stack on one node: a DAG runs through the Celery worker, and a running task survives
a restart of that worker. Requests to the api server and Flower are made inside the container."""

import json
import time
from pathlib import Path

import pytest

from airflow_ops_testlib import run_playbook, run_role

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"

ADMIN_PASSWORD = "molecule-Admin-Secret-1"
FLOWER_AUTH = ("ops", "molecule-Flower-Secret-1")
API = "http://127.0.0.1:8080"
FIRST = "af-airflow-debian12"
SERVICES = ["api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"]

VALID_AIRFLOW = {
    "airflow_redis_password": "molecule-broker-Secret-1",
    "airflow_database_password": "molecule-db-Secret/1%@",
    "airflow_fernet_key": "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    "airflow_api_secret_key": "molecule-api-secret-key-1",
    "airflow_jwt_secret": "molecule-jwt-secret-key-1",
    "airflow_admin_password": ADMIN_PASSWORD,
    "airflow_api_server_host": FIRST,
    "airflow_api_server_workers": 1,
}

HTTP = r"""
import base64, json, sys, urllib.error, urllib.request
method, url, body, token, basic = json.loads(sys.argv[1])
req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
req.add_header("Content-Type", "application/json")
if token:
    req.add_header("Authorization", "Bearer " + token)
if basic:
    req.add_header("Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=30) as resp:
        status, text = resp.status, resp.read().decode()
except urllib.error.HTTPError as err:
    status, text = err.code, err.read().decode()
print(json.dumps({"status": status, "body": text}))
"""


def http(host, method, url, body=None, token=None, basic=None):
    """(status, parsed JSON body or text), requested from inside the container."""
    out = host.check_output("python3 -c %s %s", HTTP, json.dumps([method, url, body, token, basic]))
    result = json.loads(out)
    try:
        return result["status"], json.loads(result["body"])
    except ValueError:
        return result["status"], result["body"]


def token(host, password=ADMIN_PASSWORD):
    status, body = http(host, "POST", f"{API}/auth/token", {"username": "admin", "password": password})
    return status, body


@pytest.fixture(scope="module")
def jwt(host):
    status, body = token(host)
    assert status in (200, 201), body
    return body["access_token"]


def wait_for(what, check, timeout=300, interval=3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def trigger(host, jwt, dag_id):
    """Unpause the DAG once it is parsed, start a run, return its id."""
    wait_for(f"{dag_id} to be parsed", lambda: http(host, "GET", f"{API}/api/v2/dags/{dag_id}", token=jwt)[0] == 200)
    status, body = http(host, "PATCH", f"{API}/api/v2/dags/{dag_id}", {"is_paused": False}, token=jwt)
    assert status == 200, body
    status, body = http(host, "POST", f"{API}/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}, token=jwt)
    assert status == 200, body
    return body["dag_run_id"]


def run_state(host, jwt, dag_id, run_id):
    status, body = http(host, "GET", f"{API}/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=jwt)
    assert status == 200, body
    return body["state"]


def task_instance(host, jwt, dag_id, run_id, task_id):
    status, body = http(host, "GET", f"{API}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", token=jwt)
    assert status == 200, body
    return body


@pytest.mark.parametrize("component", SERVICES)
def test_components_run_as_enabled_units(host, component):
    service = host.service(f"airflow-{component}")
    assert service.is_running
    assert service.is_enabled
    assert host.check_output(f"systemctl show -p User --value airflow-{component}") == "airflow"


def test_secret_files_are_private(host):
    for path, owner, group, mode in [
        ("/etc/airflow/airflow.cfg", "root", "airflow", 0o640),
        ("/etc/airflow/flower.env", "root", "airflow", 0o640),
        ("/opt/airflow/simple_auth_manager_passwords.json", "airflow", "airflow", 0o600),
    ]:
        f = host.file(path)
        assert (f.user, f.group, f.mode) == (owner, group, mode), path


@pytest.fixture(scope="module")
def node(host):
    return host.backend.get_hostname()


def test_config_is_celery_with_postgres_and_redis(host, node):
    def get(section, key):
        return host.check_output(
            f"runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
            f"/opt/airflow/venv/bin/airflow config get-value {section} {key}"
        )

    assert get("core", "executor") == "CeleryExecutor"
    assert get("core", "execution_api_server_url") == f"http://{node}:8080/execution/"
    # The password went through URL and configparser escaping intact.
    assert get("celery", "broker_url").startswith("redis://:molecule-broker-Secret-1@")
    assert "molecule-db-Secret%2F1%25%40@" in get("database", "sql_alchemy_conn")


def test_lock_pins_celery_that_the_provider_can_use(host):
    """The lock of the host's Python minor (3.11 on Debian 12, 3.13 on Debian 13) holds celery 5.6.3."""
    pip = host.check_output("/opt/airflow/venv/bin/python -c 'import celery, airflow; print(celery.__version__, airflow.__version__)'")
    assert pip.split() == ["5.6.3", "3.3.2"]


def test_api_server_is_healthy(host):
    status, body = http(host, "GET", f"{API}/api/v2/monitor/health")
    assert status == 200
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert body[component]["status"] == "healthy", body


def test_token_requires_the_admin_password(host, jwt):
    assert jwt
    status, _ = token(host, password="not-the-password")
    assert status == 401
    status, _ = http(host, "GET", f"{API}/api/v2/dags")
    assert status == 401
    status, body = http(host, "GET", f"{API}/api/v2/dags", token=jwt)
    assert status == 200, body


def test_worker_answers_ping(host, node):
    out = host.run(
        "runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
        f"/opt/airflow/venv/bin/celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d celery@{node}"
    )
    assert out.rc == 0, out.stderr
    assert "pong" in out.stdout


def test_flower_lists_the_worker_with_auth_only(host, node):
    status, body = http(host, "GET", "http://127.0.0.1:5555/api/workers", basic=FLOWER_AUTH)
    assert status == 200
    assert f"celery@{node}" in body
    status, _ = http(host, "GET", "http://127.0.0.1:5555/api/workers")
    assert status == 401
    status, _ = http(host, "GET", "http://127.0.0.1:5555/api/workers", basic=("ops", "wrong-password-123"))
    assert status == 401


def test_dag_runs_through_the_celery_worker(host, jwt, node):
    run_id = trigger(host, jwt, "molecule_celery_smoke")
    state = wait_for("the smoke run to finish", lambda: (s := run_state(host, jwt, "molecule_celery_smoke", run_id)) in ("success", "failed") and s)
    ti = task_instance(host, jwt, "molecule_celery_smoke", run_id, "hello")
    assert state == "success", ti
    assert ti["executor"] in (None, "CeleryExecutor") or "Celery" in ti["executor"]
    assert ti["hostname"] == node  # executed by the worker, which logs its hostname
    assert ti["queue"] == "default"
    status, log = http(host, "GET", f"{API}/api/v2/dags/molecule_celery_smoke/dagRuns/{run_id}/taskInstances/hello/logs/1", token=jwt)
    assert status == 200
    assert f"hello from {node}" in json.dumps(log)


def test_running_task_survives_worker_restart(host, jwt):
    """Warm shutdown: systemctl restart waits for the 60 s task, which then ends success, first try."""
    dag_id, task_id = "molecule_sleep_60", "sleep_60"
    run_id = trigger(host, jwt, dag_id)
    wait_for("the 60 s task to run", lambda: task_instance(host, jwt, dag_id, run_id, task_id)["state"] == "running", timeout=180, interval=1)
    time.sleep(5)
    started = time.monotonic()
    host.run_expect([0], "systemctl restart airflow-worker")
    waited = time.monotonic() - started
    assert waited > 20, f"the restart returned after {waited:.0f}s: the worker did not wait for its task"
    state = wait_for("the sleep run to finish", lambda: (s := run_state(host, jwt, dag_id, run_id)) in ("success", "failed") and s)
    ti = task_instance(host, jwt, dag_id, run_id, task_id)
    assert state == "success", ti
    assert ti["try_number"] == 1, ti
    assert host.service("airflow-worker").is_running


def test_dags_folder_is_synced_identically(host, node):
    """A file that is not in airflow_dags_src is removed; re-running only the configure phase (tag)."""
    if node != FIRST:
        pytest.skip("the sync does not depend on the distribution")
    host.run_expect([0], "touch /opt/airflow/dags/stray_dag.py")
    result = run_playbook(str(CONVERGE), "--limit", FIRST, "--tags", "airflow_configure")
    assert result.returncode == 0, result.output
    assert result.changed == 1, result.output
    assert not host.file("/opt/airflow/dags/stray_dag.py").exists
    assert host.file("/opt/airflow/dags/molecule_dags.py").exists


@pytest.mark.parametrize(
    ("role", "bad_input", "expected"),
    [
        ("airflow", {k: v for k, v in VALID_AIRFLOW.items() if k != "airflow_admin_password"}, "missing required arguments: airflow_admin_password"),
        ("airflow", dict(VALID_AIRFLOW, airflow_fernet_key="Sh0rt!-not-a-fernet-key"), "airflow_fernet_key must be a Fernet key"),
        ("airflow", dict(VALID_AIRFLOW, airflow_api_server_host="localhost"), "airflow_api_server_host=localhost"),
        ("airflow", dict(VALID_AIRFLOW, airflow_components=["webserver"]), "airflow_components"),
        ("worker", dict(VALID_AIRFLOW, worker_concurrency="many"), "worker_concurrency"),
        ("worker", dict(VALID_AIRFLOW, worker_stop_timeout=999999), "worker_stop_timeout=999999"),
        ("flower", VALID_AIRFLOW, "missing required arguments: flower_basic_auth"),
        ("flower", dict(VALID_AIRFLOW, flower_basic_auth="ops:Sh0rt!"), "flower_basic_auth must be"),
    ],
    ids=["airflow-no-admin-password", "airflow-bad-fernet", "airflow-localhost-api", "airflow-bad-component",
         "worker-bad-concurrency", "worker-stop-timeout-too-long", "flower-no-auth", "flower-short-password"],
)
def test_invalid_input_fails_clearly_before_any_change(host, node, role, bad_input, expected):
    if node != FIRST:
        pytest.skip("the input checks do not depend on the distribution")
    result = run_role(role, FIRST, bad_input)
    assert result.returncode != 0, result.output
    assert expected in result.output
    assert result.changed == 0, result.output
    assert "Sh0rt!" not in result.output  # the secret is not echoed back
