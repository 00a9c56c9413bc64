"""Day-2 operations as side_effect.yml did them after the drills: the run in which cl-worker3 left
`flower` (and every certificate was renewed; test_cluster.py judges those), and the
decommissioning of cl-worker3."""

import json
import shlex

from airflow_ops_testlib import AirflowApi, container_ip, molecule_host, side_effect, side_effect_run, use_cluster_ca

testinfra_hosts = ["ansible://cl-api"]

RESULTS_LOGIN = ("airflow_celery", "airflow_celery", "molecule-results-Secret-1")


def test_a_component_a_host_left_is_stopped_and_removed():
    # cl-worker3 joined `flower` in the scale-out and left it in the renewal run
    run = side_effect_run("renewal")
    assert run.returncode == 0, run.output[-5000:]
    before = json.loads(side_effect("units-worker3-flower.json").read_text())["cl-worker3"]
    after = json.loads(side_effect("units-worker3-retire.json").read_text())["cl-worker3"]
    assert any(line.startswith("airflow-flower.service") for line in before), before
    assert not any(line.startswith("airflow-flower.service") for line in after), after
    assert any(line.startswith("airflow-worker.service") for line in after), after
    worker3 = molecule_host("cl-worker3")
    assert not worker3.file("/etc/systemd/system/airflow-flower.service").exists
    # Nor Flower's key and certificate, which the host made while it ran Flower.
    made = json.loads(side_effect("tls-worker3-flower.json").read_text())
    assert sorted(made) == ["/etc/airflow-ops/tls/flower.crt", "/etc/airflow-ops/tls/flower.key"], made
    left = worker3.run("ls /etc/airflow-ops/tls").stdout.split()
    assert not [name for name in left if name.startswith("flower.")], left
    assert not worker3.file("/etc/airflow/tls/flower.key").exists and not worker3.file("/etc/airflow/tls/flower.crt").exists


def test_the_decommissioned_worker_is_gone_and_its_logs_stay_readable():
    run = side_effect_run("decommission")
    assert run.returncode == 0, run.output[-5000:]
    worker3 = molecule_host("cl-worker3")
    assert worker3.run("systemctl is-active airflow-worker").stdout.strip() != "active"
    assert not worker3.file("/etc/systemd/system/airflow-worker.service").exists
    assert not worker3.file("/etc/airflow/airflow.cfg").exists
    # Nothing answers as cl-worker3 through the broker.
    ping = molecule_host("cl-worker1").run(
        "runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
        "/opt/airflow/venv/bin/celery --app airflow.providers.celery.executors.celery_executor.app "
        "inspect ping --destination celery@cl-worker3 --timeout 5"
    )
    assert "pong" not in ping.stdout, ping.stdout
    # PgBouncer, where the workers log in, no longer admits its address, even with the result backend's password.
    user, database, password = RESULTS_LOGIN
    code = ("import psycopg2, sys\n"
            f"psycopg2.connect(host={container_ip('cl-db')!r}, port=6432, user={user!r}, password=sys.stdin.read(),"
            f" dbname={database!r}, connect_timeout=10).close()\n")
    login = worker3.run(f"printf %s {shlex.quote(password)} | /opt/airflow/venv/bin/python -c {shlex.quote(code)}")
    assert login.rc != 0 and "login rejected" in login.stderr, login.stdout + login.stderr
    # A task that ran there (in the drills, or the upgrade): its log, now served from the api server's own copy.
    use_cluster_ca("cl-api")
    api = AirflowApi(f"https://{container_ip('cl-api')}:8080", "admin", "molecule-Admin-Secret-1")
    ran = [ti for ti in api.every_task_instance("airflow_ops_hold")
           if ti["hostname"] == "cl-worker3" and ti["task_id"] == "hold" and ti["state"] == "success"]
    assert ran, "no hold task succeeded on cl-worker3"
    ti = ran[0]
    log = api.get(f"/api/v2/dags/airflow_ops_hold/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
                  f"?map_index={ti['map_index']}")
    assert "holding a slot on cl-worker3" in json.dumps(log), json.dumps(log)[:2000]
    # Unpacked by airflow: what came from the archive belongs to airflow; its copies are gone from both hosts.
    unpacked = "find /opt/airflow/logs -path '*/dag_id=airflow_ops_hold/*' -type f"
    assert molecule_host("cl-api").check_output(unpacked) != ""
    assert molecule_host("cl-api").check_output(f"{unpacked} ! -user airflow") == ""
    for name in ("cl-api", "cl-worker3"):
        assert molecule_host(name).check_output("find /var/lib/airflow-ops /var/tmp -name '*task-logs-*'") == "", name
