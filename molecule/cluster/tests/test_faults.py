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
    "pool_fanout",
    "lost_workers",
    "worker_restart",
    "redis_host_kill",
    "redis_kill9",
    "postgresql_restart",
    "api_server_stop",
    "scheduler_kill9",
    "all_hosts_restart",
]
TIMES = ("recovery_seconds", "worker_back_seconds", "restart_seconds", "promoted_seconds", "broker_back_seconds",
         "first_start_after_fault_seconds", "rejoined_seconds", "balancer_down_seconds",
         "balancer_up_seconds", "scheduler_back_seconds", "healthy_seconds", "pooler_back_seconds", "run_seconds",
         "units_back_seconds")


# Faults drilled together in one run (drills.py): their records are parts of that drill's.
PART_OF = {"worker_kill9": "lost_workers", "host_kill": "lost_workers"}


def drill(name):
    """What drills.py recorded for one drill (or one fault of a drill); fails if the drill broke."""
    results = json.loads(side_effect("drills.json").read_text())
    result = results.get(PART_OF.get(name, name), {"error": "the drill did not run"})
    assert "error" not in result, result["error"]
    return dict(result, **result[name]) if name in PART_OF else result


def report(line, capsys):
    """Print a measured line past pytest's capture and hand it to run-tests' summary."""
    with capsys.disabled():
        print(f"\n{line}")
    record_figure(line)


def times(result):
    # units back: how long after the run's end the units systemd was restarting ran again (0: none was)
    return ", ".join(f"{key.removesuffix('_seconds').replace('_', ' ')} {result[key]} s" for key in TIMES
                     if key in result and (result[key] or key != "units_back_seconds"))


@pytest.mark.parametrize("name", DRILLS)
def test_the_run_succeeds_and_nothing_is_left_behind(name, capsys):
    result = drill(name)
    parts = "".join(f"; {part} ({result[part]['worker']}): {times(result[part])}" for part in PART_OF if part in result)
    restarted = f"; restarted by systemd: {', '.join(result['restarted_by_systemd'])}" if result.get("restarted_by_systemd") else ""
    line = f"[drill] {name}: {times(result)}{parts}; tries {sorted(result['tries'].values())}{restarted}"
    report(line, capsys)
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
    # A restarted worker finishes its tasks first; a lost Redis primary's queue is on its replicas.
    result = drill(name)
    assert set(result["tries"].values()) == {1}, result


def test_a_lost_broker_host_costs_at_most_a_second_try_of_the_tasks_queued_meanwhile():
    """While the clients reach no primary (about 26 s after a host loss), the scheduler's publishes of newly queued
    tasks fail after Celery's and Airflow's short publish retries, and those tasks run again (try 2); every task
    that was running or already queued ran once. Printed by the drill's line (tries)."""
    result = drill("redis_host_kill")
    assert set(result["states"].values()) == {"success"} and set(result["tries"].values()) <= {1, 2}, result


# Issue #27: a lost Redis primary is replaced, and the clients reach the new one, within 30 s. Measured from the
# fault: met when the primary's process dies; a lost host costs more (a client tries the dead host's Sentinel and
# Redis first, 2 s each, and notices its idle connections there within about 11 s), bounded here at 45 s.
BROKER_RECOVERY_LIMIT = {"redis_kill9": 30, "redis_host_kill": 45}


@pytest.mark.parametrize("name", ["redis_host_kill", "redis_kill9"])
def test_a_lost_redis_primary_is_replaced_and_the_clients_follow_without_a_restart(name, capsys):
    """The primary's host killed (docker kill), then the next primary's process (kill -9, kept down): the
    Sentinels promote a replica, a Celery client on a worker host reaches it (kombu with the app's settings,
    writing a key) within BROKER_RECOVERY_LIMIT of the fault, the workers take the queued tasks from it, no Airflow unit
    restarted, and the old primary, back, replicates the new one."""
    result = drill(name)
    report(f"[broker] {name}: {result['old_primary']} lost, {result['new_primary']} promoted in {result['promoted_seconds']} s; "
           f"a client on cl-worker2 wrote to it {result['broker_back_seconds']} s after the fault; {result['started_after_fault']} "
           f"tasks started after it, the first {result['first_start_after_fault_seconds']} s after; {result['old_primary']} "
           f"a replica again after {result['rejoined_seconds']} s", capsys)
    assert result["new_primary"] not in (None, result["old_primary"]), result
    assert result["broker_back_seconds"] is not None, result["probe_error"]
    assert result["broker_back_seconds"] <= BROKER_RECOVERY_LIMIT[name], result
    assert result["started_after_fault"] > 0, result
    assert result["restarted_components"] == [], result
    assert result["replicas_of_new_primary"] == 2, result


def test_a_restarted_worker_finishes_its_running_tasks_before_it_stops():
    """Warm shutdown: `systemctl restart` of a worker running 20 s tasks returns only once they ended (not in the
    second a cold stop takes), and they succeeded on their first try (test_tasks_run_once_where_nothing_was_lost)."""
    result = drill("worker_restart")
    assert result["affected"] and result["worker_active"], result
    assert result["restart_seconds"] >= 10, result


def test_pgbouncer_admits_clients_again_within_seconds_of_a_postgresql_restart():
    """PgBouncer refuses every client for server_login_retry after a failed server login (PostgreSQL
    answers "the database system is starting up" during its restart): 1 s in its settings, not the
    default 15 s, so that clients are back about as soon as PostgreSQL is."""
    result = drill("postgresql_restart")
    assert result["pooler_back_seconds"] <= result["restart_seconds"] + 5, result


def test_a_stopped_api_server_costs_the_tasks_nothing():
    """Issue #27: one of two api servers stopped for 30 s under 6 running tasks. Every worker's HAProxy saw both
    up before, took the stopped one out within seconds (2 failed checks, 2 s apart) and back once it answered;
    every task succeeded on its first try (test_the_run_succeeds_and_nothing_is_left_behind prints the times)."""
    result = drill("api_server_stop")
    assert all(set(states.values()) == {"UP"} and len(states) == 2 for states in result["balancer_before"].values()), result
    # both api servers served the run's tasks before the stop (the stopped one had calls to lose), the other after it
    assert all(counts["before_stop"] > 0 for counts in result["balancer_sessions"].values()), result
    assert result["balancer_sessions"]["cl-api"]["after_stop"] > 0, result
    assert result["balancer_down_seconds"] <= 10, result
    assert set(result["tries"].values()) == {1}, result


def test_systemd_brings_the_scheduler_back():
    assert drill("scheduler_kill9")["scheduler_back_seconds"] <= 60


def test_hosts_come_back_as_they_were():
    assert drill("host_kill")["same_address"], "the restarted host came back with another address"
    assert drill("all_hosts_restart")["addresses_changed"] == []


def test_64_parallel_tasks_run_through_pgbouncer_within_its_server_connections(capsys):
    """Issue #26: PostgreSQL's max_connections is deliberately small (molecule.yml: 45, which the plan
    would refuse without PgBouncer); 64 parallel tasks on the three workers all succeed on their first
    try, their heartbeats and results going through PgBouncer, and PostgreSQL never serves more than
    PgBouncer's pools from it, nor any remote client but the migrating scheduler."""
    result = drill("pool_fanout")
    line = (f"[connections] 64 parallel tasks in {result['run_seconds']} s: peak {result['peak_pooled']} server "
            f"connections through PgBouncer (pools + reserve {result['server_limit']}, max_connections "
            f"{result['max_connections']}) for up to {result['peak_clients']} client connections; "
            f"{result['peak_direct']} direct ({', '.join(result['direct_from']) or 'none'}); {result['samples']} samples")
    report(line, capsys)
    assert len(result["states"]) == 64 and set(result["states"].values()) == {"success"}, result["states"]
    assert set(result["tries"].values()) == {1}, result["tries"]
    assert result["samples"] >= 10 and result["peak_pooled"] > 0, result
    assert result["peak_pooled"] <= result["server_limit"], result
    assert result["max_connections"] == 45
    # Every client connection went through the pooler: it held more of them than it used server connections.
    assert result["peak_clients"] > result["peak_pooled"], result


def test_a_runaway_task_is_killed_and_its_worker_serves_on(capsys):
    """Issue #26: a task allocating 256 MiB past the worker's MemoryMax is killed by the kernel's OOM killer
    (the unit's memory.events counts it), its task instance fails without a retry, the next task runs on the
    same worker, and the worker's main process and every other unit of the host keep their processes."""
    result = drill("worker_oom")
    line = (f"[memory] {result['worker']}: MemoryMax {result['memory_max'] // (1 << 20)} MiB, a task allocating "
            f"{result['allocated_mib']} MiB was OOM-killed ({result['oom_kill']} oom_kill); {result['slots']} running "
            f"hold tasks took {result['per_task_mib']} MiB each (anon, beyond the idle worker's "
            f"{result['anon_idle'] // (1 << 20)} MiB)")
    report(line, capsys)
    assert result["held_run_state"] == "success", result
    assert result["oom_kill"] >= 1, result
    assert result["states"] == {"allocate": "failed", "after": "success"}, result
    assert result["tries"]["allocate"] == 1, result
    assert result["hosts"]["after"] == result["hosts"]["allocate"] == result["worker"], result
    assert result["worker_restarts"] == 0 and result["changed_pids"] == [], result
