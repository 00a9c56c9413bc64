"""The rolling upgrade as side_effect.yml did it under `make test-upgrade`: from
AIRFLOW_OPS_UPGRADE_FROM to the roles' default version while tasks ran (upgrade.py's record), and
the way back from the kept install (the renewal run). `make test` skips this file: it does
not upgrade."""

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from airflow_ops_testlib import molecule_host, record_figure, side_effect, side_effect_run

testinfra_hosts = ["ansible://cl-api"]

OLD = os.environ.get("AIRFLOW_OPS_UPGRADE_FROM", "")
NEW = yaml.safe_load(Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], "roles/_airflow_common/defaults/main.yml").read_text())["airflow_version"]
pytestmark = pytest.mark.skipif(not OLD, reason="make test does not upgrade: make test-upgrade does (docs/testing.md)")
AIRFLOW_HOSTS = ["cl-broker", "cl-scheduler", "cl-api", "cl-worker1", "cl-worker2"]
WORKERS = ["celery@cl-worker1", "celery@cl-worker2", "celery@cl-worker3"]
INSTALL_TASK = "airflow_ops.celery._airflow_common : Install Apache Airflow (only when version, extras or lock changed)"


@pytest.fixture(scope="module")
def upgrade():
    return json.loads(side_effect("upgrade.json").read_text())


@pytest.fixture(scope="module")
def during(upgrade):
    """The samples taken while the upgrade's playbook ran."""
    start, end = upgrade["playbook_started"], upgrade["playbook_started"] + upgrade["playbook_seconds"]
    return [s for s in upgrade["samples"] if start <= s["t"] <= end]


def consuming(sample):
    return sorted(name for name, (queues, _active) in sample.get("workers", {}).items() if queues)


def test_the_upgrade_ran_and_installed_the_new_version_everywhere(upgrade):
    run = side_effect_run("upgrade", upgrade["rc"])
    assert run.returncode == 0, run.output[-5000:]
    installed = run.results_of(INSTALL_TASK)
    assert {host: installed.get(host) for host in AIRFLOW_HOSTS + ["cl-worker3"]} == dict.fromkeys(AIRFLOW_HOSTS + ["cl-worker3"], "changed")
    record_figure(f"rolling upgrade {OLD} -> {NEW} of 7 hosts under load: {upgrade['playbook_seconds']:.0f} s, "
                  f"{len(upgrade['tasks'])} tasks")
    record_figure(f"rolling upgrade, slowest tasks: {run.slowest_tasks()}")
    outages = [round(end - start, 1) for start, end in upgrade["api_outages"]]
    record_figure(f"rolling upgrade: the api server did not answer for {outages} s")


# A task rides out an api server silence of about 48 s (airflow_execution_api_retries 25 x
# airflow_execution_api_retry_wait 2 s); one longer than that (a restart on an overloaded machine) fails
# the tries in flight, as docs/operations.md ("Upgrading Airflow") says, and their retries run them again.
API_SILENCE_TOLERATED = 40


def stamp(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_no_task_was_killed_or_retried(upgrade):
    """Every task succeeded, on its first try, unless that try was in flight through an api server
    silence longer than the tasks ride out and ended with it (the documented limit, not a drain)."""
    tasks = upgrade["tasks"]
    assert len(tasks) >= 24, tasks
    # Tasks ran on every worker, cl-worker3 (joined with --limit) included.
    assert {t["host"] for t in tasks.values()} >= {"cl-worker1", "cl-worker2", "cl-worker3"}
    assert {key: t for key, t in tasks.items() if t["state"] != "success"} == {}
    long_silences = [(start, end) for start, end in upgrade["api_outages"] if end - start > API_SILENCE_TOLERATED]

    def explained(key):
        first = upgrade["first_tries"].get(key) or {}
        ended = stamp(first["end_date"]) if first.get("end_date") else None
        return ended is not None and any(start <= ended <= end + 15 for start, end in long_silences)

    retried = {key: t for key, t in tasks.items() if t["try"] != 1}
    unexplained = {key: t for key, t in retried.items() if not explained(key)}
    # On failure, what tells why: each such task's first try, the api server's silences, the scheduler.
    assert unexplained == {}, json.dumps({"retried": retried, "first_tries": upgrade["first_tries"],
                                          "api_outages": upgrade["api_outages"],
                                          "scheduler_log": upgrade["scheduler_log"]}, indent=1)
    if retried:
        record_figure(f"rolling upgrade: {len(retried)} tasks in flight through the api server's "
                      f"{max(end - start for start, end in long_silences):.1f} s silence ran again (try 2, success)")


def test_a_worker_consumed_at_every_moment_of_the_upgrade(during, upgrade):
    assert len(during) >= upgrade["playbook_seconds"] / 8, "too few samples"
    gaps = [b["t"] - a["t"] for a, b in zip(during, during[1:])]
    assert max(gaps) < 15, f"no sample for {max(gaps):.0f} s"
    idle = [s for s in during if not consuming(s)]
    assert idle == [], idle[:5]
    record_figure(f"rolling upgrade: fewest workers consuming at once {min(len(consuming(s)) for s in during)} of 3 "
                  f"({len(during)} samples, one per {upgrade['playbook_seconds'] / len(during):.1f} s)")


def test_each_worker_was_drained_and_restarted_alone(during, upgrade):
    """Every worker stopped consuming (drained, then restarted) at some point, and all of them
    consumed again at the end; the playbook restarted them one at a time (site_worker_batch 1)."""
    for worker in WORKERS:
        assert any(worker not in consuming(s) for s in during), f"{worker} was never drained"
    assert set(consuming(upgrade["samples"][-1])) == set(WORKERS), upgrade["samples"][-1]
    restarted = worker_play_restarts(side_effect_run("upgrade", upgrade["rc"]))
    assert sorted(map(sorted, restarted)) == [["cl-worker1"], ["cl-worker2"], ["cl-worker3"]], restarted


WORKER_PLAY = "Celery workers, a batch at a time"
RESTART_TASK = "airflow_ops.celery._airflow_common : Restart the units whose file, code or configuration changed"


def worker_play_restarts(run):
    """The hosts the workers' play restarted, one set per batch that restarted any: a batch is a run
    of consecutive results of the restart task."""
    batches, previous = [], None
    for result in run.results:
        key = (result["play"], result["task"])
        if key == (WORKER_PLAY, RESTART_TASK):
            if previous != key:
                batches.append(set())
            if result["status"] == "changed":
                batches[-1].add(result["host"])
        previous = key
    return [batch for batch in batches if batch]


def test_going_back_used_the_kept_install_without_a_download():
    run = side_effect_run("renewal")
    assert run.returncode == 0, run.output[-5000:]
    installed = run.results_of(INSTALL_TASK)
    assert set(installed) >= set(AIRFLOW_HOSTS), installed
    assert [host for host, result in installed.items() if result != "skipped"] == []
    record_figure(f"back to {OLD} from the kept install, 7 hosts: {side_effect('renewal.delta').read_text().strip()}")
    record_figure(f"back to {OLD}, slowest tasks: {run.slowest_tasks()}")
    for name in AIRFLOW_HOSTS:
        host = molecule_host(name)
        venvs = host.check_output("ls /opt/airflow/venvs").split()
        assert sorted(v.split("-")[0] for v in venvs) == [OLD, NEW], (name, venvs)
        assert host.file("/opt/airflow/venv").linked_to.startswith(f"/opt/airflow/venvs/{OLD}-")
        units = host.check_output("systemctl list-units --type=service --no-legend --plain 'airflow-*' | awk '{print $1}'").split()
        for unit in [u for u in units if not u.startswith(("airflow-cleanup-", "airflow-ops-"))]:
            exec_start = host.check_output(f"systemctl show -p ExecStart --value {unit}")
            assert f"/opt/airflow/venvs/{OLD}-" in exec_start, (name, unit, exec_start)
        version = host.check_output("/opt/airflow/venv/bin/python -c 'import airflow; print(airflow.__version__)'")
        assert version == OLD


def test_going_back_restarted_every_worker_in_one_batch():
    """site_worker_batch=100% (nothing ran by then): one batch, every worker restarted in it."""
    restarted = worker_play_restarts(side_effect_run("renewal"))
    assert sorted(map(sorted, restarted)) == [["cl-worker1", "cl-worker2", "cl-worker3"]], restarted


def test_a_backup_of_the_metadata_database_precedes_each_migration():
    db = molecule_host("cl-db")
    backups = db.file("/var/backups/airflow-ops")
    assert backups.is_directory and backups.user == "postgres" and backups.mode == 0o700
    # None when the cluster was new (an empty database), one before the upgrade, one before going back.
    dumps = db.check_output("ls /var/backups/airflow-ops").split()
    assert [re.sub(r"\d{8}T\d{6}Z", "TIME", d) for d in dumps] == [f"airflow-TIME-before-{NEW}.dump", f"airflow-TIME-before-{OLD}.dump"]
    for dump in dumps:
        listing = db.run(f"runuser -u postgres -- pg_restore --list /var/backups/airflow-ops/{dump}")
        assert listing.rc == 0 and "TABLE public dag_run" in listing.stdout, listing.stderr
