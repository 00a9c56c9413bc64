"""Faults the cluster survives: side_effect ran molecule/cluster/drills.py (each drill a fault
under a running airflow_ops_hold DAG run); these tests judge what it recorded and print each
drill's time to recovery. Runs after test_cluster.py, on the cluster the drills left behind."""

import json

import pytest

from airflow_ops_testlib import record_figure, side_effect

testinfra_hosts = ["ansible://cl-api"]

# Issue #10: a task whose worker died runs again within this many seconds.
RECOVERY_LIMIT = 120
DRILLS = [
    "lost_workers",
    "worker_restart",
    "redis_kill9",
    "postgresql_restart",
    "api_server_restart",
    "scheduler_kill9",
    "all_hosts_restart",
]
TIMES = ("recovery_seconds", "worker_back_seconds", "restart_seconds", "redis_back_seconds", "api_down_seconds",
         "scheduler_back_seconds", "healthy_seconds", "run_seconds")


# Faults drilled together in one run (drills.py): their records are parts of that drill's.
PART_OF = {"worker_kill9": "lost_workers", "host_kill": "lost_workers"}


def drill(name):
    """What drills.py recorded for one drill (or one fault of a drill); fails if the drill broke."""
    results = json.loads(side_effect("drills.json").read_text())
    result = results.get(PART_OF.get(name, name), {"error": "the drill did not run"})
    assert "error" not in result, result["error"]
    return dict(result, **result[name]) if name in PART_OF else result


def times(result):
    return ", ".join(f"{key.removesuffix('_seconds').replace('_', ' ')} {result[key]} s" for key in TIMES if key in result)


@pytest.mark.parametrize("name", DRILLS)
def test_the_run_succeeds_and_nothing_is_left_behind(name, capsys):
    result = drill(name)
    parts = "".join(f"; {part} ({result[part]['worker']}): {times(result[part])}" for part in PART_OF if part in result)
    line = f"[drill] {name}: {times(result)}{parts}; tries {sorted(result['tries'].values())}"
    with capsys.disabled():
        print(f"\n{line}")
    record_figure(line)
    assert result["run_state"] == "success", result
    assert result["left_running_or_queued"] == [], result
    assert result["down_units"] == {}, f"{name} left units that do not run: {result['down_units']}"


@pytest.mark.parametrize("name", ["worker_kill9", "host_kill"])
def test_the_tasks_of_a_lost_worker_run_again_within_two_minutes(name):
    result = drill(name)
    affected = [str(index) for index in result["affected"]]
    assert all(result["tries"][index] == 2 for index in affected), result
    assert result["recovery_seconds"] <= RECOVERY_LIMIT, result


def test_a_killed_worker_leaves_no_task_process_behind():
    assert drill("worker_kill9")["leftover_processes"] == [], "task processes of the killed worker ran on"


@pytest.mark.parametrize("name", ["worker_restart", "redis_kill9"])
def test_tasks_run_once_where_nothing_was_lost(name):
    # A restarted worker finishes its tasks first; a killed Redis keeps its queue (AOF).
    result = drill(name)
    assert set(result["tries"].values()) == {1}, result


def test_a_restarted_worker_finishes_its_running_tasks_before_it_stops():
    """Warm shutdown: `systemctl restart` of a worker running 20 s tasks returns only once they ended (not in the
    second a cold stop takes), and they succeeded on their first try (test_tasks_run_once_where_nothing_was_lost)."""
    result = drill("worker_restart")
    assert result["affected"] and result["worker_active"], result
    assert result["restart_seconds"] >= 10, result


def test_systemd_brings_the_scheduler_back():
    assert drill("scheduler_kill9")["scheduler_back_seconds"] <= 60


def test_hosts_come_back_as_they_were():
    assert drill("host_kill")["same_address"], "the restarted host came back with another address"
    assert drill("all_hosts_restart")["addresses_changed"] == []
