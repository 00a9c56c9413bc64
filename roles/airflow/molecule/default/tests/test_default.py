"""The whole stack on one node: a DAG runs through the Celery worker; the units, files, logins and
sandbox are as the roles promise. The api server and Flower are asked from the controller, over the
scenario's network. What changes the host (re-runs, rotations, restarts) ran before, in the
side_effect step (../side_effect/), so this verifier only observes and can run again."""

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from airflow_ops_testlib import (AirflowApi, assert_airflow_unit_runs_hardened, container_ip, http, redis_acl, unit_properties,
                                 wait_for)

ADMIN_PASSWORD = "molecule-Admin-Secret-1"
VIEWER_PASSWORD = "molecule-Viewer-Secret-1"
FLOWER_LOGINS = [("ops", "molecule-Flower-Secret-1"), ("audit", "molecule-Audit-Secret-2")]
FLOWER_AUTH = FLOWER_LOGINS[0]
FLOWER_PORT = 5566  # flower_port (molecule.yml), not Flower's default
SERVICES = ["api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"]
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
def address(node):
    return container_ip(node)


@pytest.fixture(scope="module")
def api(address):
    return AirflowApi(f"http://{address}:8080", "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def flower(address):
    url = f"http://{address}:{FLOWER_PORT}"
    wait_for("Flower", lambda: http("GET", f"{url}/healthcheck", basic=FLOWER_AUTH)[0] == 200, timeout=120)
    return url


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


@pytest.mark.parametrize("component", SERVICES)
def test_components_run_as_enabled_hardened_units_of_the_airflow_user(host, component):
    assert_airflow_unit_runs_hardened(host, f"airflow-{component}")


def test_secret_files_are_private(host):
    for path, owner, group, mode in [
        ("/etc/airflow/airflow.cfg", "root", "airflow", 0o640),
        # systemd reads it for Flower; the airflow user cannot.
        ("/etc/airflow/flower.env", "root", "root", 0o600),
        ("/var/lib/airflow-ops/install.env", "root", "root", 0o600),
        ("/var/lib/airflow-ops/users-applied", "root", "root", 0o600),
    ]:
        f = host.file(path)
        assert (f.user, f.group, f.mode) == (owner, group, mode), path
    # FAB keeps the users in the database: no SimpleAuthManager password file.
    assert not host.file("/opt/airflow/simple_auth_manager_passwords.json").exists


def as_airflow(host, script):
    """Run a shell script as the airflow user: what any task code on this host runs as."""
    return host.run(f"runuser -u airflow -- sh -c {shlex.quote(script)}")


@pytest.mark.parametrize(
    "attempt",
    [
        "mv /opt/airflow/venv /opt/airflow/venv.old",
        "mv /opt/airflow/dags /opt/airflow/dags.old",
        "mv /opt/airflow/constraints /opt/airflow/constraints.old",
        "mkdir /opt/airflow/venv.new",
        "touch /opt/airflow/venv/bin/python-evil",
        "touch /opt/airflow/dags/evil_dag.py",
        "touch /opt/airflow/constraints/evil.txt",
        "touch /opt/airflow-uv/bin/evil",
        "touch /var/cache/airflow-ops/wheelhouse/evil-1.0-py3-none-any.whl",
        "touch /var/cache/airflow-ops/wheelhouse.key",
        "touch /var/lib/airflow-ops/schema-checked",
        "touch /etc/airflow/evil.cfg",
        "touch /etc/systemd/system/airflow-evil.service",
    ],
)
def test_task_user_cannot_change_what_root_runs(host, attempt):
    """Nothing root executes or reads at deploy time is in a path airflow can write or rename."""
    result = as_airflow(host, attempt)
    assert result.rc != 0, f"airflow could: {attempt}"


def test_task_user_can_write_its_logs(host):
    """The control for the test above: the same user writes where Airflow must."""
    result = as_airflow(host, "touch /opt/airflow/logs/probe && rm /opt/airflow/logs/probe")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("component", SERVICES)
def test_units_write_only_logs(host, component):
    """The logs; the dag-processor and the worker also the checkouts of Git DAG bundles."""
    paths = host.check_output(f"systemctl show -p ReadWritePaths --value airflow-{component}").split()
    clones = component in ("dag-processor", "worker")
    assert paths == ["/opt/airflow/logs"] + (["/opt/airflow/dag_bundles"] if clones else [])
    bundles = host.file("/opt/airflow/dag_bundles")
    assert (bundles.user, bundles.group, bundles.mode) == ("airflow", "airflow", 0o750)


def test_config_is_celery_with_postgres_and_redis(host, node):
    def get(section, key):
        return host.check_output(
            f"runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
            f"/opt/airflow/venv/bin/airflow config get-value {section} {key}"
        )

    assert get("core", "executor") == "CeleryExecutor"
    assert get("core", "execution_api_server_url") == f"http://{node}:8080/execution/"
    # The broker login of the host's components (scheduler), derived from redis_password.
    assert get("celery", "broker_url").startswith(
        f"redis://scheduler:{redis_acl.user_password('molecule-broker-Secret-1', 'scheduler')}@")
    # The password went through URL and configparser escaping intact.
    assert "molecule-db-Secret%2F1%25%40@" in get("database", "sql_alchemy_conn")
    # The result backend logs in as its own role, to its own database.
    assert get("celery", "result_backend").startswith("db+postgresql://airflow_celery:molecule-results-Secret%3A2%23@")
    assert get("celery", "result_backend").endswith("/airflow_celery")
    assert get("core", "auth_manager").endswith("FabAuthManager")


def test_lock_pins_celery_that_the_provider_can_use(host):
    """The lock of the host's Python minor (3.11 on Debian 12, 3.13 on Debian 13) holds celery 5.6.3."""
    pip = host.check_output("/opt/airflow/venv/bin/python -c 'import celery, airflow; print(celery.__version__, airflow.__version__)'")
    assert pip.split() == ["5.6.3", "3.3.2"]


def test_installed_from_the_wheelhouse_without_any_package_index(host):
    """airflow_install_source: wheelhouse on a host that reaches no package index (prepare rejects
    HTTPS from it): every distribution in Airflow's virtualenv, and uv, is a wheel of the
    wheelhouse the controller downloaded for Python 3.11 and copied over."""
    probe = host.run("python3 -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/uv/', timeout=10)\"")
    assert probe.rc != 0, "the host reaches PyPI: the test would prove nothing"

    key = host.file("/var/cache/airflow-ops/wheelhouse.key").content_string
    assert key.startswith("airflow-3.3.2-python3.11-x86_64-glibc2.35-")
    assert Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "wheelhouse", f"{key}.tar").is_file()

    def normal(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    wheels = {
        (normal(name), version)
        for name, version in (
            path.rsplit("/", 1)[1].split("-")[:2] for path in host.check_output("ls /var/cache/airflow-ops/wheelhouse/*.whl").split()
        )
    }
    probe = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] + ' ' + d.version for d in m.distributions()))"
    installed = {
        (normal(name), version)
        for name, version in (line.split() for line in host.check_output(f"/opt/airflow/venv/bin/python -c {shlex.quote(probe)}").splitlines())
    }
    # pip (and on 3.11 setuptools) come with `python3 -m venv`, from the distribution.
    missing = {dist for dist in installed - wheels if dist[0] not in ("pip", "setuptools")}
    assert len(installed) > 150 and not missing, sorted(missing)
    uv = host.check_output("/opt/airflow-uv/bin/uv --version").split()[1]
    assert ("uv", uv) in wheels


def test_api_server_is_healthy(address):
    status, body = http("GET", f"http://{address}:8080/api/v2/monitor/health")
    assert status == 200
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert body[component]["status"] == "healthy", body


def test_token_requires_the_admin_password(address, api):
    assert api.token
    status, _unused = http("POST", f"http://{address}:8080/auth/token", {"username": "admin", "password": "not-the-password"})
    assert status == 401
    status, _unused = http("GET", f"http://{address}:8080/api/v2/dags")
    assert status == 401
    status, body = api.request("GET", "/api/v2/dags")
    assert status == 200, body


def test_viewer_reads_but_cannot_trigger(address, api):
    """FAB roles: a Viewer sees the DAGs but may not start a run; the Admin may."""
    viewer = AirflowApi(f"http://{address}:8080", "viewer", VIEWER_PASSWORD)
    wait_for("the DAG to be parsed", lambda: viewer.request("GET", "/api/v2/dags/molecule_celery_smoke")[0] == 200)
    status, body = viewer.request("GET", "/api/v2/dags")
    assert status == 200, body
    assert "molecule_celery_smoke" in [dag["dag_id"] for dag in body["dags"]]
    status, body = viewer.request("POST", "/api/v2/dags/molecule_celery_smoke/dagRuns", {"logical_date": None})
    assert status == 403, body
    status, body = viewer.request("PATCH", "/api/v2/dags/molecule_celery_smoke", {"is_paused": True})
    assert status == 403, body


def test_ui_login_page_is_fab(address):
    """The UI's login is FAB's, not SimpleAuthManager's development page."""
    status, body = http("GET", f"http://{address}:8080/auth/login/")
    assert status == 200
    assert "Simple auth manager" not in str(body)
    assert "username" in str(body).lower()


def test_the_worker_answers_through_the_broker(answers):
    assert answers["ping"] == {"ok": "pong"}


def test_the_worker_consumes_its_queues_with_its_concurrency(answers):
    assert sorted(queue["name"] for queue in answers["queues"]) == ["default", "molecule"]
    assert answers["stats"]["pool"]["max-concurrency"] == 4, answers["stats"]["pool"]


def test_a_worker_stop_waits_for_running_tasks_up_to_worker_stop_timeout(host):
    """systemd's stop sends SIGTERM to the main process only (a warm shutdown: Celery finishes the
    running tasks) and kills what is left only after worker_stop_timeout (300 s here)."""
    shown = unit_properties(host, "airflow-worker", "KillMode", "KillSignal", "TimeoutStopUSec")
    assert shown == {"KillMode": "mixed", "KillSignal": "15", "TimeoutStopUSec": "5min"}, shown


def test_the_worker_log_server_wants_a_token(host):
    """The worker serves task logs to the api server on 8793, only with a JWT signed by the
    cluster's secret."""
    script = ("import urllib.request, urllib.error\n"
              "try:\n"
              "    urllib.request.urlopen('http://127.0.0.1:8793/log/dag_id=x/run_id=y/task_id=z/attempt=1.log', timeout=10)\n"
              "    print(200)\n"
              "except urllib.error.HTTPError as err:\n"
              "    print(err.code)\n")
    assert host.check_output(f"python3 -c {shlex.quote(script)}") == "403"


@pytest.mark.parametrize("login", FLOWER_LOGINS, ids=[user for user, _unused in FLOWER_LOGINS])
def test_each_flower_login_lists_the_worker(flower, node, login):
    status, body = http("GET", f"{flower}/api/workers", basic=login)
    assert status == 200, body
    assert f"celery@{node}" in body


@pytest.mark.parametrize("login", [None, ("ops", "molecule-Audit-Secret-2"), ("admin", "molecule-Flower-Secret-1"),
                                   ("ops", "wrong-password-123")],
                         ids=["none", "other-users-password", "unknown-user", "wrong-password"])
@pytest.mark.parametrize("path", ["/metrics", "/healthcheck", "/", "/workers", "/tasks", "/api/tasks", "/api/workers", "/broker"])
def test_every_flower_path_refuses_a_wrong_login(flower, path, login):
    status, _unused = http("GET", flower + path, basic=login)
    assert status == 401, (path, login)


@pytest.mark.parametrize("path", ["/metrics", "/healthcheck", "/", "/workers", "/tasks", "/api/tasks", "/broker"])
def test_every_flower_path_opens_with_the_login(flower, path):
    status, body = http("GET", flower + path, basic=FLOWER_AUTH)
    assert status == 200, (path, body)


def test_flower_reads_the_broker_without_showing_its_password(flower):
    """Flower's broker page reads Redis (a broker it cannot reach fails the page); the URL it shows
    hides the password (the host's broker login, `scheduler`'s)."""
    status, body = http("GET", f"{flower}/broker", basic=FLOWER_AUTH)
    assert status == 200, body
    assert "redis://" in body and redis_acl.user_password("molecule-broker-Secret-1", "scheduler") not in body


@pytest.mark.parametrize("dag_id, queue", [("molecule_celery_smoke", "default"), ("molecule_queue", "molecule")])
def test_dag_runs_through_the_celery_worker(api, node, dag_id, queue):
    run = api.run_dag(dag_id, timeout=300)
    ti = api.task_instance(dag_id, run["dag_run_id"], "hello")
    assert run["state"] == "success", ti
    assert ti["hostname"] == node  # executed by the worker, which logs its hostname
    assert ti["queue"] == queue
    assert f"hello from {node}" in api.task_log(dag_id, run["dag_run_id"], "hello")
