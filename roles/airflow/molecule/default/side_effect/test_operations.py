"""Day-2 operations on one host (docs/operations.md, "Cleanup" and "Rotating the Fernet key"): the
daily cleanups delete what is old and keep what is recent, and a rotation to a new Fernet key
re-encrypts what the old one encrypted, so the old key can go.

The rotation re-runs the roles with another key and leaves the host on it (no encrypted data
left). side_effect.yml runs this file (it changes the host); the verifier only observes. One host
is enough.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from airflow_ops_testlib import run_playbook

FIRST = "af-airflow-debian12"
testinfra_hosts = [f"ansible://{FIRST}"]

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
AIRFLOW = ("runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg"
           " /opt/airflow/venv/bin/airflow")
CLEANUPS = ["logs", "db", "results"]
LOGS = "/opt/airflow/logs/dag_id=molecule_cleanup"

# The scenario's key (molecule.yml) and a second one for the rotation. Test-only keys.
ORIGINAL_KEY = "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o="
NEW_KEY = "R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo="
ROTATION_TASK = "Re-encrypt connections, variables and triggers with the first Fernet key"
CONN_ID = "molecule_fernet"
CONN_PASSWORD = "molecule-Conn-Secret-3"


def psql(host, database, sql):
    """Rows of one statement as the PostgreSQL superuser (the database runs on this node)."""
    out = host.run(f"runuser -u postgres -- psql -d {database} -v ON_ERROR_STOP=1 -At -c {shlex.quote(sql)}")
    assert out.rc == 0, out.stderr
    return out.stdout.split()


def start(host, cleanup):
    """Run one cleanup now, as its timer would, and return what that run wrote to the journal."""
    unit = f"airflow-cleanup-{cleanup}.service"
    started = host.run(f"systemctl start {unit}")
    result = host.check_output(f"systemctl show -p Result --value {unit}")
    invocation = host.check_output(f"systemctl show -p InvocationID --value {unit}")
    host.run("journalctl --sync")
    journal = host.check_output(f"journalctl -o cat _SYSTEMD_INVOCATION_ID={invocation}")
    assert (started.rc, result) == (0, "success"), journal[-3000:]
    return journal


@pytest.mark.parametrize("cleanup", CLEANUPS)
def test_cleanup_timers_are_scheduled(host, cleanup):
    timer = host.service(f"airflow-cleanup-{cleanup}.timer")
    assert timer.is_enabled
    assert host.check_output(f"systemctl show -p ActiveState --value airflow-cleanup-{cleanup}.timer") == "active"
    assert f"airflow-cleanup-{cleanup}.timer" in host.check_output("systemctl list-timers --all --no-legend 'airflow-cleanup-*'")
    assert host.check_output(f"systemctl show -p User --value airflow-cleanup-{cleanup}.service") == "airflow"
    for suffix in ("service", "timer"):
        unit = host.file(f"/etc/systemd/system/airflow-cleanup-{cleanup}.{suffix}")
        assert (unit.user, unit.group, unit.mode) == ("root", "root", 0o644)


def test_logs_cleanup_deletes_old_logs_and_keeps_recent_ones(host):
    old, fresh, empty = f"{LOGS}/run_id=old/attempt=1.log", f"{LOGS}/run_id=fresh/attempt=1.log", f"{LOGS}/run_id=empty"
    host.run_expect([0], "runuser -u airflow -- sh -c " + shlex.quote(
        f"mkdir -p {LOGS}/run_id=old {LOGS}/run_id=fresh {empty} && echo old > {old} && echo fresh > {fresh}"
        f" && touch -d '40 days ago' {old} {empty}"))
    try:
        start(host, "logs")
        assert not host.file(old).exists
        assert host.file(fresh).exists
        assert not host.file(empty).exists  # empty and untouched for long
    finally:
        host.run(f"rm -rf {LOGS}")


def test_db_cleanup_purges_rows_older_than_the_retention(host):
    """airflow db clean (90 days) deletes an audit log row from 200 days ago, keeps today's, and
    archives nothing (airflow_db_clean_skip_archive)."""
    psql(host, "airflow", "DELETE FROM log WHERE event LIKE 'molecule-cleanup-%'")
    psql(host, "airflow", "INSERT INTO log (dttm, event, owner) VALUES"
                          " (now() - interval '200 days', 'molecule-cleanup-old', 'molecule'),"
                          " (now(), 'molecule-cleanup-recent', 'molecule')")
    journal = start(host, "db")
    assert psql(host, "airflow", "SELECT event FROM log WHERE event LIKE 'molecule-cleanup-%'") == ["molecule-cleanup-recent"]
    assert psql(host, "airflow", "SELECT tablename FROM pg_tables WHERE tablename LIKE '\\_airflow\\_deleted\\_\\_%'") == []
    assert "--clean-before-timestamp" in journal


def test_results_cleanup_deletes_expired_celery_results(host):
    """A Celery result from 3 days ago goes (retention 1 day), one from now stays."""
    start(host, "results")  # creates Celery's tables, should no task have stored a result yet
    psql(host, "airflow_celery", "DELETE FROM celery_taskmeta WHERE task_id LIKE 'molecule-cleanup-%'")
    psql(host, "airflow_celery", "INSERT INTO celery_taskmeta (id, task_id, status, date_done) VALUES"
                                 " (nextval('task_id_sequence'), 'molecule-cleanup-old', 'SUCCESS', now() - interval '3 days'),"
                                 " (nextval('task_id_sequence'), 'molecule-cleanup-recent', 'SUCCESS', now())")
    journal = start(host, "results")
    assert psql(host, "airflow_celery", "SELECT task_id FROM celery_taskmeta WHERE task_id LIKE 'molecule-cleanup-%'") == [
        "molecule-cleanup-recent"]
    assert re.search(r"celery_taskmeta [1-9]", journal), journal


def converge(tmp_path, key=None):
    """The scenario's roles on this host (configure phase), with another airflow_fernet_key."""
    args = ["--limit", FIRST, "--tags", "airflow_configure"]
    if key:
        extra = tmp_path / "key.json"
        extra.write_text(json.dumps({"airflow_fernet_key": key}))
        args += ["-e", f"@{extra}"]
    run = run_playbook(str(CONVERGE), *args)
    assert run.returncode == 0, run.output[-3000:]
    for secret in (ORIGINAL_KEY, NEW_KEY, CONN_PASSWORD):
        assert secret not in run.output
    return run


def rotation(run):
    """The rotation task's status on the host (changed, skipped, ...), or None if it did not run."""
    return {result["host"]: result["status"] for result in run.results
            if result["task"].endswith(" : " + ROTATION_TASK)}.get(FIRST)


def test_fernet_key_rotation_keeps_connections_readable(host, tmp_path):
    """NEW,OLD re-encrypts once (a second run changes nothing); then NEW alone decrypts the
    connection OLD encrypted, so the second step of the procedure in docs/operations.md (NEW alone in the
    inventory) loses nothing. That step's run itself is an ordinary change of airflow.cfg."""
    def password(key=None):
        """The connection's password as Airflow reads it, with airflow.cfg's keys or this one only
        (the environment outranks airflow.cfg); None if it cannot decrypt it."""
        override = f" AIRFLOW__CORE__FERNET_KEY={key}" if key else ""
        out = host.run(AIRFLOW.replace(" env ", f" env{override} ", 1) + f" connections get {CONN_ID} -o json")
        return json.loads(out.stdout)[0]["password"] if out.rc == 0 else None

    host.run(f"{AIRFLOW} connections delete {CONN_ID}")
    host.run_expect([0], f"{AIRFLOW} connections add {CONN_ID} --conn-type http --conn-host example.invalid"
                         f" --conn-password {CONN_PASSWORD}")
    assert password() == CONN_PASSWORD
    both = converge(tmp_path, f"{NEW_KEY},{ORIGINAL_KEY}")
    assert rotation(both) == "changed", both.output[-3000:]
    assert password() == CONN_PASSWORD
    stamp = host.file("/var/lib/airflow-ops/fernet-rotated")
    assert (stamp.user, stamp.group, stamp.mode) == ("root", "root", 0o600)
    assert ORIGINAL_KEY not in stamp.content_string and NEW_KEY not in stamp.content_string

    again = converge(tmp_path, f"{NEW_KEY},{ORIGINAL_KEY}")
    assert rotation(again) == "skipped", again.output[-3000:]
    assert again.changed == 0, again.output[-3000:]

    # Re-encrypted with NEW: readable with NEW alone, no longer with OLD alone.
    assert password(NEW_KEY) == CONN_PASSWORD
    assert password(ORIGINAL_KEY) != CONN_PASSWORD
    # The host stays on NEW,OLD (nothing runs after this test but destroy); without the connection
    # no data is encrypted with NEW, so a later converge with the scenario's key finds the host sound.
    host.run(f"{AIRFLOW} connections delete {CONN_ID}")
