"""DAGs from Git: the cluster's bundle git-dags (molecule.yml) follows main of a repository on
cl-outsider. side_effect.yml's git_bundle.py pushed a new commit while a run of the old one held,
and ran site.yml on cl-worker2 with a key the Git server does not know (badkey); this judges both,
and what each host holds of the bundle."""

import json
import os
from pathlib import Path

import pytest
from airflow_ops_testlib import molecule_host, record_figure, side_effect, side_effect_run

testinfra_hosts = ["ansible://cl-worker1"]

WORKERS = ("cl-worker1", "cl-worker2", "cl-worker3")
GIT_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "git")


@pytest.fixture(scope="module")
def runs() -> dict:
    return json.loads(side_effect("git-bundle.json").read_text())


def releases(run: dict, prefix: str = "") -> dict[str, str]:
    """{task id: the release its code returned} of the run's tasks whose id starts with prefix."""
    return {task_id: str(task["returned"]).split("@", maxsplit=1)[0] for task_id, task in run["tasks"].items()
            if task_id.startswith(prefix) and task_id != "gate"}


def test_a_run_keeps_the_commit_it_started_with_after_a_push(runs):
    """Run A started at v1 and held; v2 was pushed and parsed before its 8 `after` tasks started:
    every task of A, on every worker that ran one, ran v1's code; run B, started after, ran v2's."""
    commits, a, b = runs["commits"], runs["runs"]["A"], runs["runs"]["B"]
    assert commits["v1"] != commits["v2"]
    assert (a["state"], a["bundle_version"]) == ("success", commits["v1"]), a
    assert (b["state"], b["bundle_version"]) == ("success", commits["v2"]), b
    assert set(releases(a).values()) == {"v1"} and len(releases(a)) == 9, a["tasks"]
    assert set(releases(b).values()) == {"v2"} and len(releases(b)) == 9, b["tasks"]
    after_hosts = {task["hostname"] for task_id, task in a["tasks"].items() if task_id.startswith("after_")}
    assert len(after_hosts) >= 2 and after_hosts <= set(WORKERS), after_hosts
    assert all(task["try_number"] == 1 for task in a["tasks"].values()), a["tasks"]
    # The DAG version of both runs comes from the Git bundle (v2 changed task code only, not the DAG's
    # structure, so both runs share one DAG version, which names the newest commit).
    assert {v["bundle_name"] for v in a["dag_versions"] + b["dag_versions"]} == {"git-dags"}
    record_figure(f"git bundle: run A (v1) ran its after tasks on {', '.join(sorted(after_hosts))} after v2 was parsed")


def test_a_push_is_visible_within_a_minute(runs):
    """With the collection's default refresh interval (airflow_dag_bundle_refresh_interval: 30)."""
    seconds = runs["push_to_visible_seconds"]
    record_figure(f"git bundle: push to visible {seconds} s")
    assert seconds <= 60


def test_each_worker_that_ran_a_version_keeps_it_in_persistent_storage(runs):
    """Workers check out the version a run started with under /opt/airflow/dag_bundles (not the
    unit's private /tmp), as airflow, without .git (Airflow prunes it)."""
    ran = {task["hostname"] for run in runs["runs"].values() for task in run["tasks"].values()}
    for name in sorted(ran & set(WORKERS) - {"cl-worker3"}):  # cl-worker3 is decommissioned by now
        host = molecule_host(name)
        versions = host.run("ls /opt/airflow/dag_bundles/git-dags/versions").stdout.split()
        assert set(versions) & set(runs["commits"].values()), (name, versions)
        some = sorted(set(versions) & set(runs["commits"].values()))[0]
        checkout = host.file(f"/opt/airflow/dag_bundles/git-dags/versions/{some}")
        assert checkout.user == "airflow" and not host.file(f"{checkout.path}/.git").exists
        assert host.file(f"{checkout.path}/dags/airflow_ops_versions.py").exists


@pytest.mark.parametrize("name", ["cl-worker1", "cl-scheduler"])
def test_the_deploy_key_is_readable_by_airflow_and_changeable_only_by_root(name):
    host = molecule_host(name)
    for path, mode in (("/etc/airflow/git/git-dags.key", 0o640), ("/etc/airflow/git/git-dags.known_hosts", 0o644),
                       ("/etc/airflow/git/connections.json", 0o640)):
        found = host.file(path)
        assert (found.user, found.group, found.mode) == ("root", "airflow", mode), path
    connections = json.loads(host.file("/etc/airflow/git/connections.json").content_string)
    assert connections["airflow_ops_git_git-dags"]["extra"]["strict_host_key_checking"] == "yes"
    # Task code (airflow) reads the key, as Git needs, and cannot replace it.
    assert host.run("runuser -u airflow -- sh -c 'echo x >> /etc/airflow/git/git-dags.key'").rc != 0


@pytest.mark.parametrize("name", ["cl-api", "cl-broker"])
def test_hosts_that_never_clone_hold_no_git_credential(name):
    """The api server and Flower hosts get the bundle list (no credential in it), not the key."""
    host = molecule_host(name)
    assert not host.file("/etc/airflow/git").exists
    assert "LocalFilesystemBackend" not in host.file("/etc/airflow/airflow.cfg").content_string
    assert "git-dags" in host.file("/etc/airflow/airflow.cfg").content_string


def test_a_key_the_git_server_refuses_fails_the_run_naming_the_bundle_and_changes_nothing():
    run = side_effect_run("badkey")
    assert run.returncode != 0
    error = run.error_of("cl-worker2")
    assert "cl-worker2 cannot read a Git DAG bundle of airflow_dag_bundles" in error, error
    assert "bundle git-dags (git@cl-outsider:/srv/git/dags.git, tracking_ref main)" in error and "Permission denied" in error
    assert run.changed_on("cl-worker2") == 0
    # The worker kept the deploy key that works.
    assert molecule_host("cl-worker2").file("/etc/airflow/git/git-dags.key").content_string.strip() == \
        (GIT_DIR / "deploy_key").read_text().strip()


@pytest.mark.parametrize("run_as", ["reconverge", "scale-out", "badkey"])
def test_no_run_prints_a_deploy_key(run_as):
    """-vvv runs: the deploy key (a fresh worker's converge probes and writes it) and the refused key
    never appear in their output, not even one line of them."""
    log = side_effect(f"{run_as}.log").read_text()
    assert "ESTABLISH" in log
    for key in ("deploy_key", "unknown_key"):
        body = [line for line in (GIT_DIR / key).read_text().splitlines() if line and not line.startswith("-----")]
        assert body and not [line for line in body if line in log], key


def test_with_git_down_the_dag_processor_logs_it_and_keeps_the_last_commit(runs):
    """The Git server's SSH stopped: the dag-processor logs the failed fetch naming the bundle, and the
    DAG stays listed at the last commit it fetched (the alert on the fetch age is test_monitoring's)."""
    down = runs["git_down"]
    assert down["logged"] and "Error refreshing bundle git-dags" in down["logged"][0], down
    assert down["bundle_version"] == runs["commits"]["v2"] and down["is_stale"] is False, down
    record_figure(f"git bundle: Git down, the failed fetch logged after {down['seconds']} s")
