"""Re-running the roles on one host: the DAG sync by tag, bad input that fails before any change,
refused logins and units in a restart loop that fail the play. side_effect.yml runs this file (its
runs change the host and put it back); the verifier only observes.

None depends on the distribution: one host is enough.
"""

import json
import shutil
import time
from pathlib import Path

import pytest

from airflow_ops_testlib import (
    AirflowApi,
    assert_case_refused,
    container_ip,
    record_figure,
    run_playbook,
    run_role_cases,
    wait_for,
)

FIRST = "af-airflow-debian12"
testinfra_hosts = [f"ansible://{FIRST}"]

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"

VALID_AIRFLOW = {
    "airflow_redis_password": "molecule-broker-Secret-1",
    "airflow_database_password": "molecule-db-Secret/1%@",
    "airflow_result_backend_password": "molecule-results-Secret:2#",
    "airflow_fernet_key": "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    "airflow_api_secret_key": "molecule-api-secret-key-1-7c2e9b4f",
    "airflow_jwt_secret": "molecule-jwt-secret-key-1-9f4c2a7e5b1d8036c4e9a2f7b5d1c8e3a6f0b9d2c7e4a1f5",
    "airflow_admin_password": "molecule-Admin-Secret-1",
    "airflow_api_server_host": FIRST,
    "airflow_api_server_workers": 1,
}


NEW_DAG = """from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="molecule_delivered", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def molecule_delivered():
    @task
    def hello():
        print("delivered")

    hello()


molecule_delivered()
"""


def test_a_deployed_dag_shows_up_in_the_api_within_30_seconds_and_the_folder_is_synced(host, tmp_path):
    """A DAG file a run adds is listed by the API soon after the run (airflow_dag_refresh_interval),
    not after Airflow's 5 minutes; the same run removes a file that is not in airflow_dags_src, and
    the next run (only the configure phase, by tag) removes the new DAG again, nothing else."""
    host.run_expect([0], "touch /opt/airflow/dags/stray_dag.py")
    src = tmp_path / "dags"
    shutil.copytree(CONVERGE.parent / "dags", src)
    (src / "molecule_delivered.py").write_text(NEW_DAG)
    api = AirflowApi(f"http://{container_ip(FIRST)}:8080", "admin", VALID_AIRFLOW["airflow_admin_password"])
    started = time.monotonic()
    deploy = run_playbook(str(CONVERGE), "--limit", FIRST, "--tags", "airflow_configure", "-e", f"airflow_dags_src={src}")
    delivered = time.monotonic()
    assert deploy.returncode == 0, deploy.output[-3000:]
    try:
        assert not host.file("/opt/airflow/dags/stray_dag.py").exists
        wait_for("the new DAG in the API", lambda: api.request("GET", "/api/v2/dags/molecule_delivered")[0] == 200,
                 timeout=90, interval=1)
        listed = time.monotonic()
    finally:
        restored = run_playbook(str(CONVERGE), "--limit", FIRST, "--tags", "airflow_configure")
    record_figure(f"[dag delivery] a new DAG file listed by the API {listed - started:.1f} s after the deploy run"
                  f" started ({delivered - started:.1f} s run), {listed - delivered:.1f} s after it ended")
    assert restored.returncode == 0, restored.output[-3000:]
    assert restored.changed == 1, restored.output[-3000:]  # the removal of molecule_delivered.py
    assert not host.file("/opt/airflow/dags/molecule_delivered.py").exists
    assert host.file("/opt/airflow/dags/molecule_dags.py").exists
    assert listed - delivered <= 30


# Bad input for each role, every case a host of its own in one run per role (run_role_cases).
CASES = {
    "airflow-no-admin-password": ("airflow", {k: v for k, v in VALID_AIRFLOW.items() if k != "airflow_admin_password"},
                                  "airflow_admin_password is not set for {host}"),
    "airflow-bad-fernet": ("airflow", dict(VALID_AIRFLOW, airflow_fernet_key="Sh0rt!-not-a-fernet-key"),
                           "airflow_fernet_key must be a Fernet key"),
    "airflow-bad-fernet-in-list": ("airflow", dict(VALID_AIRFLOW, airflow_fernet_key=VALID_AIRFLOW["airflow_fernet_key"] + ",Sh0rt!-not-a-fernet-key"),
                                   "airflow_fernet_key must be a Fernet key"),
    "airflow-negative-log-retention": ("airflow", dict(VALID_AIRFLOW, airflow_log_retention_days=-1),
                                       "airflow_log_retention_days=-1 must be a number of days"),
    "airflow-localhost-api": ("airflow", dict(VALID_AIRFLOW, airflow_api_server_host="localhost"), "airflow_api_server_host=localhost"),
    "airflow-git-bundle-unpinned": ("airflow", dict(VALID_AIRFLOW, airflow_dag_bundles=[
        {"name": "dags-folder", "kind": "local"},
        {"name": "team", "repo_url": "git@git.example.com:data/dags.git",
         "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nmolecule-not-a-key\n-----END OPENSSH PRIVATE KEY-----"}]),
        "airflow_dag_bundles on {host}, bundle team: an SSH repo_url needs known_hosts"),
    "airflow-bad-component": ("airflow", dict(VALID_AIRFLOW, airflow_components=["webserver"]), "airflow_components"),
    "worker-bad-concurrency": ("worker", dict(VALID_AIRFLOW, worker_concurrency="many"), "worker_concurrency"),
    "worker-stop-timeout-too-long": ("worker", dict(VALID_AIRFLOW, worker_stop_timeout=999999), "worker_stop_timeout=999999"),
    "flower-no-auth": ("flower", VALID_AIRFLOW, "missing required arguments: flower_basic_auth"),
    "flower-short-password": ("flower", dict(VALID_AIRFLOW, flower_basic_auth="ops:Sh0rt!"), "flower_basic_auth must be"),
}


@pytest.fixture(scope="module")
def refused():
    """{role: its run}, one run of each role for all of its cases."""
    return {role: run_role_cases(role, FIRST, {case: inputs for case, (of, inputs, _unused) in CASES.items() if of == role})
            for role in sorted({role for role, _inputs, _expected in CASES.values()})}


@pytest.mark.parametrize("case", CASES)
def test_invalid_input_fails_clearly_before_any_change(refused, case):
    role, inputs, expected = CASES[case]
    assert_case_refused(refused[role], FIRST, case, inputs, expected)


# airflow.cfg as for all of the host's components (so the others' settings stay), then the worker
# role alone: only the worker restarts. Run with --tags airflow_configure, as a change of logins is
# pushed: the includes are tagged `always`, as the roles tag theirs.
WORKER_ONLY = f"""---
- name: The worker role on a host with every component
  hosts: {FIRST}
  tasks:
    - name: Configure Airflow for every component of the host
      ansible.builtin.include_role:
        name: airflow_ops.celery._airflow_common
        tasks_from: host
      vars:
        _airflow_common_components: [api-server, scheduler, dag-processor, triggerer, worker, flower]
      tags: always
    - name: Apply the worker role
      ansible.builtin.include_role:
        name: airflow_ops.celery.worker
      tags: always
"""


def test_a_worker_with_a_wrong_login_fails_the_play_and_names_it(tmp_path):
    """A password the broker or the result backend refuses fails the play with a message naming
    which, before the worker restarts on it; the next run with the right ones repairs the host."""
    playbook = tmp_path / "worker.yml"
    playbook.write_text(WORKER_ONLY)
    failures = {}
    for secret, named in [("airflow_redis_password", "the Celery broker redis://"),
                          ("airflow_result_backend_password", "the Celery result backend postgresql://")]:
        bad = tmp_path / f"{secret}.json"
        bad.write_text(json.dumps({secret: "wrong-Secret-123"}))
        failures[named] = run_playbook(str(playbook), "--tags", "airflow_configure", "-e", f"@{bad}")
    repaired = run_playbook(str(playbook), "--tags", "airflow_configure")
    for named, result in failures.items():
        assert result.returncode != 0, result.output[-3000:]
        assert f"The worker {FIRST} cannot use {named}" in result.output, result.output[-3000:]
        assert "wrong-Secret-123" not in result.output
    assert repaired.returncode == 0, repaired.output[-3000:]


def test_a_unit_in_a_restart_loop_is_reported_with_its_journal(host):
    """The check every play runs after starting units (files/unit_health.py): a unit that
    systemd keeps restarting fails it at once, with the end of its journal; a steady one passes."""
    host.run("systemctl stop crashloop steady; systemctl reset-failed crashloop steady")
    host.run_expect([0], "systemd-run --quiet --unit=crashloop -p Restart=on-failure -p RestartSec=1"
                         " sh -c 'echo cannot reach the broker; sleep 2; exit 1'")
    host.run_expect([0], "systemd-run --quiet --unit=steady sleep 600")
    try:
        looping = host.run("/opt/airflow/libexec/unit_health.py --settle 5 --timeout 60"
                           " --fresh=crashloop --fresh=steady crashloop steady")
        steady = host.run("/opt/airflow/libexec/unit_health.py --settle 5 --timeout 60 --fresh=steady steady")
    finally:
        host.run("systemctl stop crashloop steady; systemctl reset-failed crashloop steady")
    assert looping.rc == 1, looping.stdout
    assert "crashloop crashed and was restarted by systemd" in looping.stdout
    assert "cannot reach the broker" in looping.stdout
    assert steady.rc == 0, steady.stdout
