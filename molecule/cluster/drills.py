#!/usr/bin/env python3
"""Fault drills on the converged cluster, run by side_effect.yml; the verifier judges the results.

Each drill starts a run of examples/dags/airflow_ops_hold.py (tasks that sleep), injects one fault
while the tasks run, waits for the run to end and records what a user would look at: the run's
state, each task's tries, the time from the fault to recovery, leftover processes, units that are
not active. Results go to the JSON file given as the first argument, and one line per drill to
stdout.

    drills.py OUT.json [DRILL ...]      (default: every drill, in the order below)
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lib"))

from airflow_ops_testlib import AirflowApi, container_ip, http, use_cluster_ca, wait_for  # noqa: E402

DAG = "airflow_ops_hold"
FANOUT = "airflow_ops_fanout"  # 24 static tasks: all of them queue while no worker runs
WORKERS = ["cl-worker1", "cl-worker2", "cl-worker3"]
HOSTS = ["cl-broker", "cl-db", "cl-scheduler", "cl-api", *WORKERS]
WORKER_UNIT = "airflow-worker"
ADMIN = ("admin", "molecule-Admin-Secret-1")
REDIS_ADMIN_PASSWORD = "molecule-broker-Secret-1"  # redis_password (molecule.yml)
DATABASES = ("airflow", "airflow_celery")  # postgresql_airflow_database, postgresql_result_backend_database
# The result backend's login (postgresql_result_backend_user and _password, molecule.yml)
RESULT_BACKEND_LOGIN = ("airflow_celery", "molecule-results-Secret-1")


def sh(host: str, command: str, check: bool = True) -> str:
    out = subprocess.run(["docker", "exec", host, "sh", "-c", command], capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"{host}: {command}: {out.stderr.strip()}")
    return out.stdout.strip()


# The broker: Redis Sentinel's group of three (molecule.yml's `redis`), cl-broker the first primary.
BROKER_HOSTS = ["cl-broker", "cl-scheduler", "cl-worker1"]
SENTINEL_PORT = 26379
MASTER_NAME = "airflow"  # redis_sentinel_master_name


def broker(command: str, user: str | None = "admin", host: str = "cl-broker", port: int = 6379, check: bool = True) -> str:
    """A redis-cli command to a broker host's Redis (or, port 26379, its Sentinel), on that host: as
    `user`, or with redis_password alone (user None: the `default` user of a broker set up before ACL users)."""
    login = f" --user {user}" if user else ""
    return sh(host, f"REDISCLI_AUTH={REDIS_ADMIN_PASSWORD} redis-cli --no-auth-warning --tls --cacert /etc/redis/tls/ca.crt"
                    f"{login} -h {container_ip(host)} -p {port} {command}", check=check)


def broker_acl_log() -> list[dict]:
    """The ACL LOG (commands and logins refused) of every broker host's Redis, read as admin before a
    drill restarts one, which empties it: the verifier asserts that no client was refused anything."""
    return [entry for host in BROKER_HOSTS for entry in json.loads(broker("--json ACL LOG 128", host=host, check=False) or "[]")]


BROKER_ADDRESSES: dict[str, str] = {}


def primary_host(hosts=None) -> str | None:
    """The broker host most Sentinels (of `hosts`, default all) name as the primary; None if none answers."""
    if not BROKER_ADDRESSES:  # read while every host runs: a killed container has no address
        BROKER_ADDRESSES.update({container_ip(host): host for host in BROKER_HOSTS})
    by_address = BROKER_ADDRESSES
    named: dict[str, int] = {}
    for host in hosts or BROKER_HOSTS:
        words = broker(f"SENTINEL GET-MASTER-ADDR-BY-NAME {MASTER_NAME}", host=host, port=SENTINEL_PORT, check=False).split()
        if words:
            name = by_address.get(words[0], words[0])
            named[name] = named.get(name, 0) + 1
    return max(named, key=named.get) if named else None


def move_primary(target: str) -> str:
    """Make `target` the primary before a drill kills its host (cl-broker runs no scheduler): the other
    replicas may not be promoted (replica-priority 0) while the Sentinels fail over on request."""
    others = [host for host in BROKER_HOSTS if host not in (target, primary_host())]
    for host in others:
        broker("CONFIG SET replica-priority 0", host=host)
    try:
        time.sleep(11)  # the Sentinels read a replica's priority from its INFO, every 10 s
        broker(f"SENTINEL FAILOVER {MASTER_NAME}", host=target, port=SENTINEL_PORT)
        wait_for(f"{target} to be the primary", lambda: primary_host() == target and replication(target).get("connected_slaves") == "2",
                 timeout=120, interval=1)
    finally:
        for host in others:
            broker("CONFIG SET replica-priority 100", host=host)
    return target


def replication(host: str) -> dict:
    """INFO replication of a broker host's Redis as {field: value}; {} while it does not answer."""
    out = broker("INFO replication", host=host, check=False)
    return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)


# What a Celery client does to reach the broker (roles/_airflow_common/files/celery_check.py's way:
# kombu with the settings the app gets, [celery] celery_config_options), tried on a worker host every half second
# until it writes to a primary again: the time it did, printed (the containers share the host's clock).
FOLLOW_PROBE = r"""
import sys, time
import kombu
from airflow.configuration import conf
c = conf.getimport("celery", "celery_config_options")
while time.time() < float(sys.argv[1]) + 120:
    try:
        with kombu.Connection(c["broker_url"], transport_options=dict(c["broker_transport_options"]),
                              ssl=c.get("broker_use_ssl") or False, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
            client = conn.default_channel.client
            client.lpush("airflow-ops-drill-probe", "1")
            client.delete("airflow-ops-drill-probe")
        print("reached", time.time())
        break
    except Exception:
        time.sleep(0.5)
"""


def follow_seconds(host: str, fault_at: float, out: dict) -> None:
    """Run FOLLOW_PROBE as airflow on a worker host; seconds from the fault to its write (or None) into out["seconds"]."""
    command = ["docker", "exec", "-u", "airflow", "-e", "AIRFLOW_CONFIG=/etc/airflow/airflow.cfg", "-e", "AIRFLOW_HOME=/opt/airflow", host,
               "/opt/airflow/venv/bin/python", "-c", FOLLOW_PROBE, str(fault_at)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=180)
    reached = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("reached ")]
    out["seconds"] = round(float(reached[0]) - fault_at, 1) if reached else None
    out["error"] = done.stderr.strip()[-300:] if done.returncode else ""


def unit(host: str, name: str) -> dict:
    """A few of the unit's properties; ActiveState "unknown" while the host boots or is down."""
    props = "ActiveState,SubState,MainPID,NRestarts,ControlGroup"
    out = sh(host, f"systemctl show {name} --property={props}", check=False)
    info = {"ActiveState": "unknown", "SubState": "unknown", "MainPID": "0", "NRestarts": "0", "ControlGroup": ""}
    info.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return info


def cgroup_file(host: str, name: str, controller: str, *files: str) -> str:
    """The first of `files` in the unit's cgroup that exists: under the unified hierarchy (cgroup v2) or the
    controller's own (v1, as on hosts that still mount it; this test machine's kernel does). "" if none."""
    group = unit(host, name)["ControlGroup"]
    if not group:
        return ""
    paths = [f"{root}{group}/{file}" for file in files for root in ("/sys/fs/cgroup", f"/sys/fs/cgroup/{controller}")]
    return sh(host, "for p in " + " ".join(paths) + "; do [ -e \"$p\" ] && echo \"$p\" && break; done", check=False)


def cgroup_pids(host: str, name: str) -> set[str]:
    path = cgroup_file(host, name, "systemd", "cgroup.procs")
    if not path:
        raise RuntimeError(f"{host}: no cgroup.procs for {name}")
    return set(sh(host, f"cat {path}", check=False).split())


def still_alive(host: str, pids: set[str]) -> list[str]:
    return [pid for pid in pids if sh(host, f"kill -0 {pid} 2>/dev/null && echo yes", check=False) == "yes"]


def airflow_units(host: str) -> dict[str, str]:
    """The components' services and their states (not the daily cleanups' oneshot services and timers)."""
    out = sh(host, "systemctl list-units --all --type=service --no-legend --plain 'airflow-*' | awk '{print $1, $3, $4}'",
             check=False)
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()
            if line and not line.startswith(("airflow-cleanup-", "airflow-ops-"))}


def down_units() -> dict[str, list[str]]:
    down = {h: [u for u, state in airflow_units(h).items() if state != "active running"] for h in HOSTS}
    return {h: units for h, units in down.items() if units}


# A component that lost its database or broker connection mid-call may exit; systemd starts it
# again after RestartSec (10 s) and its start takes a few more: the drill's end waits that long.
UNITS_BACK_TIMEOUT = 60


def units_back() -> dict:
    """Whether every Airflow unit runs again by the run's end, or within UNITS_BACK_TIMEOUT seconds of
    it (a unit systemd is restarting): `down_units`, those that did not; `units_down_at_end`, those
    that were still coming back when the run ended, and how long they took."""
    started = time.time()
    at_end = down = down_units()
    while down and time.time() - started < UNITS_BACK_TIMEOUT:
        time.sleep(2)
        down = down_units()
    return {"down_units": down, "units_down_at_end": at_end,
            "units_back_seconds": round(time.time() - started, 1) if at_end and not down else 0.0}


def epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


class Cluster:
    def __init__(self) -> None:
        # site_tls is on in the scenario: HTTPS verified against the cluster's CA.
        use_cluster_ca("cl-api")
        self.base = f"https://{container_ip('cl-api')}:8080"
        self.api = wait_for("the api server to hand out a token", self._login, timeout=300)

    def _login(self):
        try:
            return AirflowApi(self.base, *ADMIN)
        except (AssertionError, OSError, urllib.error.URLError):
            return None

    def get(self, path: str):
        """GET through the API; None while the api server does not answer (restarts)."""
        try:
            status, body = self.api.request("GET", path)
        except (OSError, urllib.error.URLError):
            return None
        return body if status == 200 else None

    def start(self, tasks: int = 0, seconds: int = 0, dag: str = DAG, conf: dict | None = None) -> str:
        """Unpause the DAG and start a run: of the hold DAG with `tasks` and `seconds`, of another with `conf`."""
        wait_for(f"{dag} to be parsed", lambda: self.get(f"/api/v2/dags/{dag}"), timeout=300)
        status, body = self.api.request("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})
        assert status == 200, body
        conf = {"tasks": tasks, "seconds": seconds} if dag == DAG else dict(conf or {})
        status, body = self.api.request("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None, "conf": conf})
        assert status == 200, body
        return body["dag_run_id"]

    def holds(self, run_id: str, dag: str = DAG) -> list[dict]:
        """The run's working task instances: the mapped `hold` ones, or every task of another DAG."""
        body = self.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances?limit=100")
        if body is None:
            return []
        if dag != DAG:
            return body["task_instances"]
        return [ti for ti in body["task_instances"] if ti["task_id"] == "hold" and ti["map_index"] >= 0]

    def wait_holds(self, run_id: str, count: int, state: str, timeout: float = 300, dag: str = DAG) -> list[dict]:
        def ready():
            tis = [ti for ti in self.holds(run_id, dag) if ti["state"] == state and (state != "running" or ti["hostname"])]
            return tis if len(tis) >= count else None

        return wait_for(f"{count} hold tasks {state}", ready, timeout=timeout, interval=1)

    def finish(self, run_id: str, timeout: float = 600, dag: str = DAG) -> dict:
        def done():
            run = self.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}")
            return run if run and run["state"] in ("success", "failed") else None

        return wait_for(f"run {run_id} to end", done, timeout=timeout, interval=2)

    def unfinished_anywhere(self) -> list[str]:
        """Task instances of any run still running or queued (nothing may be left behind)."""
        left = []
        for state in ("running", "queued"):
            body = self.get(f"/api/v2/dags/~/dagRuns/~/taskInstances?state={state}&limit=100") or {"task_instances": []}
            left += [f"{ti['dag_id']}/{ti['task_id']}[{ti['map_index']}] {state}" for ti in body["task_instances"]]
        return left

    def summary(self, run_id: str, since: float, dag: str = DAG) -> dict:
        try:
            run = self.finish(run_id, dag=dag)
        except AssertionError as err:
            raise AssertionError(f"{err}; {self.diagnosis(run_id, dag)}") from None
        tis = self.holds(run_id, dag)
        key = (lambda ti: str(ti["map_index"])) if dag == DAG else (lambda ti: ti["task_id"])
        return {
            "run_state": run["state"],
            "run_seconds": round(epoch(run["end_date"]) - epoch(run["start_date"]), 1),
            "tries": {key(ti): ti["try_number"] for ti in tis},
            "states": {key(ti): ti["state"] for ti in tis},
            "hosts": {key(ti): ti["hostname"] for ti in tis},
            "left_running_or_queued": self.unfinished_anywhere(),
            **units_back(),
            "drill_seconds": round(time.time() - since, 1),
        }

    def diagnosis(self, run_id: str, dag: str = DAG) -> str:
        """What a run that did not end left behind: its tasks' states and hosts, and the last
        journal lines of the scheduler and of each worker (the drill's error carries them)."""
        tis = [f"{ti['task_id']}[{ti['map_index']}]={ti['state']}@{ti['hostname'] or '-'}" for ti in self.holds(run_id, dag)]
        journals = {h: sh(h, f"journalctl -u {u} -n 8 --no-pager -o cat", check=False)
                    for h, u in [("cl-scheduler", "airflow-scheduler")] + [(w, WORKER_UNIT) for w in WORKERS]}
        return json.dumps({"task_instances": tis, "journals": journals})


def busiest_worker(running: list[dict]) -> tuple[str, list[int]]:
    by_host: dict[str, list[int]] = {}
    for ti in running:
        by_host.setdefault(ti["hostname"], []).append(ti["map_index"])
    host = max(by_host, key=lambda h: len(by_host[h]))
    return host, by_host[host]


def recovery(cluster: Cluster, run_id: str, affected: list[int], fault_at: float) -> float:
    """Seconds from the fault until the last affected task had started its next try."""
    starts = [epoch(ti["start_date"]) for ti in cluster.holds(run_id) if ti["map_index"] in affected]
    return round(max(starts) - fault_at, 1)


def drill_lost_workers(cluster: Cluster) -> dict:
    """Two workers lost at once while they run tasks: kill -9 of one's main process, and another's
    host killed (docker kill) and started again at once. One run for both: what each recorded is
    under worker_kill9 and host_kill."""
    began = time.time()
    run_id = cluster.start(tasks=6, seconds=40)
    by_host: dict[str, list[int]] = {}
    for ti in cluster.wait_holds(run_id, 6, "running"):
        by_host.setdefault(ti["hostname"], []).append(ti["map_index"])
    if len(by_host) < 2:
        raise RuntimeError(f"every task ran on one worker: {by_host}")
    killed, crashed = sorted(by_host, key=lambda host: -len(by_host[host]))[:2]
    pids = cgroup_pids(killed, WORKER_UNIT)
    before = int(unit(killed, WORKER_UNIT)["NRestarts"])
    address = container_ip(crashed)
    fault_at = time.time()
    sh(killed, f"kill -9 {unit(killed, WORKER_UNIT)['MainPID']}")
    subprocess.run(["docker", "kill", crashed], check=True, capture_output=True)
    subprocess.run(["docker", "start", crashed], check=True, capture_output=True)
    killed_back = wait_for("the killed worker to be restarted by systemd",
                           lambda: unit(killed, WORKER_UNIT)["ActiveState"] == "active"
                           and int(unit(killed, WORKER_UNIT)["NRestarts"]) > before and time.time(), timeout=300, interval=1)
    crashed_back = wait_for("the restarted host to run its worker again",
                            lambda: unit(crashed, WORKER_UNIT)["ActiveState"] == "active" and time.time(), timeout=300, interval=2)
    result = cluster.summary(run_id, began)
    result["worker_kill9"] = dict(worker=killed, affected=by_host[killed], worker_back_seconds=round(killed_back - fault_at, 1),
                                  recovery_seconds=recovery(cluster, run_id, by_host[killed], fault_at),
                                  leftover_processes=still_alive(killed, pids))
    result["host_kill"] = dict(worker=crashed, affected=by_host[crashed], worker_back_seconds=round(crashed_back - fault_at, 1),
                               recovery_seconds=recovery(cluster, run_id, by_host[crashed], fault_at),
                               same_address=container_ip(crashed) == address)
    return result


def drill_worker_restart(cluster: Cluster) -> dict:
    """systemctl restart of a worker while it runs tasks: they finish first (warm shutdown)."""
    began = time.time()
    run_id = cluster.start(tasks=3, seconds=20)
    host, affected = busiest_worker(cluster.wait_holds(run_id, 3, "running"))
    fault_at = time.time()
    sh(host, f"systemctl restart {WORKER_UNIT}")
    restart_seconds = round(time.time() - fault_at, 1)
    result = cluster.summary(run_id, began)
    result.update(worker=host, affected=affected, restart_seconds=restart_seconds,
                  worker_active=unit(host, WORKER_UNIT)["ActiveState"] == "active")
    return result


def drill_redis_primary(cluster: Cluster, how: str) -> dict:
    """The Redis primary lost while tasks run and more wait in the queue: its process killed (kill -9,
    kept down as a process that crashes again would be) or its host killed (docker kill). A replica
    is promoted by the Sentinels; workers and schedulers follow without a restart; the old primary,
    back, rejoins as a replica. Figures: seconds to the promotion, until a client on a worker host
    reaches the new primary, and until the old one replicates it."""
    began = time.time()
    old = primary_host()
    if how == "host" and old != "cl-broker":
        old = move_primary("cl-broker")
    survivors = [host for host in BROKER_HOSTS if host != old]
    run_id = cluster.start(tasks=20, seconds=15)
    cluster.wait_holds(run_id, 8, "running")
    acl_log = broker_acl_log()
    components = {f"{h}/{u}": unit(h, u)["MainPID"] for h in HOSTS if h != old or how == "kill9" for u in airflow_units(h)}
    probe: dict = {}
    fault_at = time.time()
    if how == "kill9":
        sh(old, f"kill -9 {unit(old, 'redis-server')['MainPID']}; systemctl stop redis-server")
    else:
        subprocess.run(["docker", "kill", old], check=True, capture_output=True)
    follower = threading.Thread(target=follow_seconds, args=("cl-worker2", fault_at, probe))
    follower.start()
    promoted = wait_for("a Sentinel to name a new primary",
                        lambda: (p := primary_host(survivors)) not in (None, old) and (p, time.time()), timeout=120, interval=0.5)
    follower.join()
    if how == "kill9":
        sh(old, "systemctl start redis-server")
    else:
        subprocess.run(["docker", "start", old], check=True, capture_output=True)
    new_address = {host: address for address, host in BROKER_ADDRESSES.items()}[promoted[0]]
    rejoined = wait_for(f"{old} to replicate {promoted[0]}",
                        lambda: replication(old).get("master_host") == new_address
                        and replication(old).get("master_link_status") == "up" and time.time(), timeout=180, interval=1)
    result = cluster.summary(run_id, began)
    starts = sorted(epoch(ti["start_date"]) for ti in cluster.holds(run_id) if ti["start_date"] and epoch(ti["start_date"]) > fault_at)
    restarted = sorted(name for name, pid in components.items() if unit(*name.split("/"))["MainPID"] != pid)
    result.update(old_primary=old, new_primary=promoted[0], promoted_seconds=round(promoted[1] - fault_at, 1),
                  broker_back_seconds=probe.get("seconds"), probe_error=probe.get("error", ""),
                  rejoined_seconds=round(rejoined - fault_at, 1), started_after_fault=len(starts),
                  first_start_after_fault_seconds=round(starts[0] - fault_at, 1) if starts else None,
                  restarted_components=restarted, acl_log_before=acl_log,
                  replicas_of_new_primary=int(replication(promoted[0]).get("connected_slaves", 0)))
    return result


def drill_redis_host_kill(cluster: Cluster) -> dict:
    return drill_redis_primary(cluster, "host")


def drill_redis_kill9(cluster: Cluster) -> dict:
    return drill_redis_primary(cluster, "kill9")


def drill_postgresql_restart(cluster: Cluster) -> dict:
    """PostgreSQL restarted while tasks run."""
    began = time.time()
    run_id = cluster.start(tasks=3, seconds=20)
    cluster.wait_holds(run_id, 3, "running")
    # How long after the fault a worker's result-backend login goes through PgBouncer again: it
    # refuses every client for server_login_retry after a failed server login.
    address = container_ip("cl-db")
    login = (f"/opt/airflow/venv/bin/python -c \"import psycopg2; print(psycopg2.connect(host='{address}', port=6432, "
             f"dbname='{DATABASES[1]}', user='{RESULT_BACKEND_LOGIN[0]}', password='{RESULT_BACKEND_LOGIN[1]}', sslmode='require', "
             f"connect_timeout=2).cursor().execute('SELECT 1') or 1)\" 2>/dev/null")
    restarts = airflow_restarts()
    fault_at = time.time()
    sh("cl-db", "systemctl restart postgresql")
    restart_seconds = round(time.time() - fault_at, 1)
    pooler_back = wait_for("a login through PgBouncer", lambda: sh(WORKERS[0], login, check=False) == "1" and time.time(),
                           timeout=120, interval=0.2)
    result = cluster.summary(run_id, began)
    after = airflow_restarts()
    result.update(restart_seconds=restart_seconds, pooler_back_seconds=round(pooler_back - fault_at, 1),
                  restarted_by_systemd=sorted(u for u in after if after[u] != restarts.get(u)))
    return result


def airflow_restarts() -> dict[str, str]:
    """{host/unit: NRestarts} of every Airflow unit."""
    return {f"{h}/{u}": unit(h, u)["NRestarts"] for h in HOSTS for u in airflow_units(h)}


# The second api server (molecule.yml): cl-scheduler runs one beside cl-api, which the drills' REST
# calls go to; the workers' tasks reach both through their HAProxy (roles/api_balancer).
SECOND_API = "cl-scheduler"
BALANCER_SOCKET = "/run/airflow-ops-haproxy/admin.sock"


def balancer_stats(host: str) -> dict[str, dict]:
    """{api server: {"status": UP, DOWN, ..., "sessions": connections passed to it so far}} as the
    HAProxy of a worker host sees them (`show stat` on its admin socket)."""
    code = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('" + BALANCER_SOCKET + "'); "
            "s.sendall(b'show stat\\n'); print(s.makefile().read())")
    rows = [line.split(",") for line in sh(host, f'python3 -c "{code}"').splitlines() if line and not line.startswith("#")]
    return {row[1]: {"status": row[17].split()[0], "sessions": int(row[7] or 0)}
            for row in rows if len(row) > 17 and row[1] not in ("FRONTEND", "BACKEND")}


def balancer_states(host: str) -> dict[str, str]:
    return {server: stat["status"] for server, stat in balancer_stats(host).items()}


def drill_api_server_stop(cluster: Cluster) -> dict:
    """One of the two api servers stopped for 30 s while tasks run: every worker's HAProxy takes it out
    and its tasks' calls go to the other; started again, it is taken back."""
    began = time.time()
    baseline = {host: balancer_stats(host) for host in WORKERS}
    run_id = cluster.start(tasks=6, seconds=40)
    cluster.wait_holds(run_id, 6, "running")
    time.sleep(5)  # a heartbeat of each task
    before = {host: balancer_stats(host) for host in WORKERS}
    fault_at = time.time()
    sh(SECOND_API, "systemctl stop airflow-api-server")
    down = wait_for("every worker's HAProxy to take the stopped api server out",
                    lambda: all(balancer_states(host).get(SECOND_API) == "DOWN" for host in WORKERS) and time.time(),
                    timeout=60, interval=0.5)
    time.sleep(max(0.0, 30 - (time.time() - fault_at)))
    started_at = time.time()
    sh(SECOND_API, "systemctl start airflow-api-server")
    up = wait_for("every worker's HAProxy to take the api server back",
                  lambda: all(balancer_states(host).get(SECOND_API) == "UP" for host in WORKERS) and time.time(),
                  timeout=300, interval=1)
    result = cluster.summary(run_id, began)
    after = {host: balancer_stats(host) for host in WORKERS}

    def taken(since, until, server):
        return sum(until[h][server]["sessions"] - since[h][server]["sessions"] for h in WORKERS)

    # the connections of this run's tasks each api server took through the workers' HAProxy: before the stop, after it
    sessions = {server: {"before_stop": taken(baseline, before, server), "after_stop": taken(before, after, server)}
                for server in after[WORKERS[0]]}
    result.update(balancer_before={h: {server: stat["status"] for server, stat in before[h].items()} for h in WORKERS},
                  balancer_sessions=sessions, balancer_down_seconds=round(down - fault_at, 1),
                  balancer_up_seconds=round(up - started_at, 1))
    return result


def drill_scheduler_kill9(cluster: Cluster) -> dict:
    """kill -9 of the scheduler while work is queued: systemd restarts it and the run goes on."""
    began = time.time()
    run_id = cluster.start(tasks=16, seconds=10)
    cluster.wait_holds(run_id, 1, "running")
    before = int(unit("cl-scheduler", "airflow-scheduler")["NRestarts"])
    fault_at = time.time()
    sh("cl-scheduler", f"kill -9 {unit('cl-scheduler', 'airflow-scheduler')['MainPID']}")
    back = wait_for("systemd to restart the scheduler",
                    lambda: unit("cl-scheduler", "airflow-scheduler")["ActiveState"] == "active"
                    and int(unit("cl-scheduler", "airflow-scheduler")["NRestarts"]) > before and time.time(),
                    timeout=120, interval=1)
    result = cluster.summary(run_id, began)
    result.update(scheduler_back_seconds=round(back - fault_at, 1))
    return result


def drill_all_hosts_restart(cluster: Cluster) -> dict:
    """Every host restarted at once; no Ansible run; then a new run."""
    began = time.time()
    addresses = {h: container_ip(h) for h in HOSTS}
    units = {h: list(airflow_units(h)) for h in HOSTS}
    acl_log = broker_acl_log()
    fault_at = time.time()
    on_all(HOSTS, lambda h: subprocess.run(["docker", "restart", "--time", "30", h], check=True, capture_output=True))
    healthy = wait_for("every Airflow unit to run again",
                       lambda: all(airflow_units(h).get(u) == "active running" for h in HOSTS for u in units[h])
                       and api_health(cluster) and time.time(), timeout=600, interval=3)
    changed = [h for h in HOSTS if container_ip(h) != addresses[h]]
    if changed:
        raise RuntimeError(f"addresses changed on restart: {changed}")
    run_id = cluster.start(tasks=6, seconds=5)
    result = cluster.summary(run_id, began)
    result.update(healthy_seconds=round(healthy - fault_at, 1), addresses_changed=changed, acl_log_before=acl_log)
    return result


def api_health(cluster: Cluster) -> bool:
    try:
        status, _unused = http("GET", f"{cluster.base}/api/v2/monitor/health")
    except (OSError, urllib.error.URLError):
        return False
    return status == 200


def on_all(hosts, action) -> None:
    errors = []

    def run(host):
        try:
            action(host)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(f"{host}: {err}")

    threads = [threading.Thread(target=run, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("; ".join(errors))


MEMORY = "airflow_ops_memory"


def server_connections() -> dict:
    """PostgreSQL's connections to the two databases, by where they come from: through PgBouncer (the
    local socket) or straight from another host."""
    rows = sh("cl-db", "runuser -u postgres -- psql -XAt -F ' ' -c \"SELECT coalesce(host(client_addr), 'local'), count(*) "
                       f"FROM pg_stat_activity WHERE datname IN ('{DATABASES[0]}', '{DATABASES[1]}') GROUP BY 1\"", check=False)
    counts = {line.split()[0]: int(line.split()[1]) for line in rows.splitlines() if line.strip()}
    return {"pooled": counts.pop("local", 0), "direct": counts}


def pooler_clients() -> int:
    """Client connections PgBouncer holds (established TCP connections to its port)."""
    out = sh("cl-db", "ss -Htn state established '( sport = :6432 )' | wc -l", check=False)
    return int(out or 0)


def pgbouncer_budget() -> dict:
    """The server connections PgBouncer may open, from its settings file: the pools plus their reserve."""
    ini = sh("cl-db", "cat /etc/pgbouncer/airflow-ops.ini")
    pools = [int(part.split("=")[1]) for line in ini.splitlines() for part in line.split() if part.startswith("pool_size=")]
    reserve = int(next(line.split("=")[1] for line in ini.splitlines() if line.startswith("reserve_pool_size")))
    max_connections = int(sh("cl-db", "runuser -u postgres -- psql -XAtc 'SHOW max_connections'"))
    return {"pools": pools, "reserve": reserve, "server_limit": sum(pools) + reserve * len(pools),
            "max_connections": max_connections}


def drill_pool_fanout(cluster: Cluster) -> dict:
    """64 parallel tasks through PgBouncer while PostgreSQL's max_connections is small: the peak of
    server connections (sampled every half second on the database host) against the budget."""
    began = time.time()
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(dict(server_connections(), clients=pooler_clients(), at=round(time.time() - began, 1)))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run_id = cluster.start(tasks=64, seconds=5)
        result = cluster.summary(run_id, began)
    finally:
        stop.set()
        sampler.join()
    result.update(pgbouncer_budget(), samples=len(samples),
                  peak_pooled=max((s["pooled"] for s in samples), default=0),
                  peak_direct=max((sum(s["direct"].values()) for s in samples), default=0),
                  direct_from=sorted({addr for s in samples for addr in s["direct"]}),
                  peak_clients=max((s["clients"] for s in samples), default=0))
    return result


def memory_events(host: str, name: str) -> dict:
    """The unit's memory events (v2 memory.events; v1 memory.oom_control), oom_kill among them."""
    path = cgroup_file(host, name, "memory", "memory.events", "memory.oom_control")
    if not path:
        raise RuntimeError(f"{host}: no memory events for {name}")
    out = sh(host, f"cat {path}", check=False)
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2}


def anon_bytes(host: str, name: str) -> int:
    """The unit's anonymous memory (v2 memory.stat anon; v1 rss): what its processes allocated."""
    path = cgroup_file(host, name, "memory", "memory.stat")
    out = sh(host, f"grep -E '^(anon|rss) ' {path}", check=False) if path else ""
    if not out:
        raise RuntimeError(f"{host}: no anonymous memory figure for {name}")
    return int(out.split()[1])


def unit_pids(host: str) -> dict[str, str]:
    """MainPID of every running service of a host."""
    out = sh(host, "systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}'", check=False)
    return {name: unit(host, name)["MainPID"] for name in out.split()}


def drill_worker_oom(cluster: Cluster) -> dict:
    """One worker alone (the others stopped, warm): four tasks measure the memory a running task takes;
    then a task allocates 256 MiB past the worker's MemoryMax. The kernel kills it, its task instance
    fails, the next task runs on the same worker, and no unit of the host lost its process."""
    began = time.time()
    host, others = WORKERS[0], WORKERS[1:]
    on_all(others, lambda h: sh(h, f"systemctl stop {WORKER_UNIT}"))
    try:
        idle = anon_bytes(host, WORKER_UNIT)
        slots = int(sh(host, "grep -o -- '--concurrency [0-9]*' /etc/systemd/system/airflow-worker.service | awk '{print $2}'"))
        run_id = cluster.start(tasks=slots, seconds=25)
        cluster.wait_holds(run_id, slots, "running")
        time.sleep(8)  # every task's process started and settled
        busy = anon_bytes(host, WORKER_UNIT)
        held = cluster.summary(run_id, began)
        bound = int(unit_property(host, WORKER_UNIT, "MemoryMax"))
        pids, restarts, events = unit_pids(host), unit(host, WORKER_UNIT)["NRestarts"], memory_events(host, WORKER_UNIT)
        mib = bound // (1 << 20) + 256
        memory_run = cluster.start(dag=MEMORY, conf={"mib": mib})
        run = cluster.finish(memory_run, dag=MEMORY)
        tis = {ti["task_id"]: ti for ti in cluster.holds(memory_run, dag=MEMORY)}
        after_pids = unit_pids(host)
        return {
            "worker": host, "memory_max": bound, "allocated_mib": mib, "slots": slots, "held_run_state": held["run_state"],
            "anon_idle": idle, "anon_busy": busy, "per_task_mib": round((busy - idle) / slots / (1 << 20), 1),
            "run_state": run["state"],
            "states": {task: ti["state"] for task, ti in tis.items()},
            "tries": {task: ti["try_number"] for task, ti in tis.items()},
            "hosts": {task: ti["hostname"] for task, ti in tis.items()},
            "oom_kill": memory_events(host, WORKER_UNIT).get("oom_kill", 0) - events.get("oom_kill", 0),
            "worker_restarts": int(unit(host, WORKER_UNIT)["NRestarts"]) - int(restarts),
            "changed_pids": sorted(name for name, pid in pids.items() if after_pids.get(name) != pid),
            "drill_seconds": round(time.time() - began, 1),
        }
    finally:
        on_all(others, lambda h: sh(h, f"systemctl start {WORKER_UNIT}"))


def unit_property(host: str, name: str, prop: str) -> str:
    return sh(host, f"systemctl show {name} --property={prop} --value")


DRILLS = {
    "pool_fanout": drill_pool_fanout,
    "worker_oom": drill_worker_oom,
    "lost_workers": drill_lost_workers,
    "worker_restart": drill_worker_restart,
    "redis_host_kill": drill_redis_host_kill,
    "redis_kill9": drill_redis_kill9,
    "postgresql_restart": drill_postgresql_restart,
    "api_server_stop": drill_api_server_stop,
    "scheduler_kill9": drill_scheduler_kill9,
    "all_hosts_restart": drill_all_hosts_restart,
}


def main() -> int:
    out = Path(sys.argv[1])
    names = sys.argv[2:] or list(DRILLS)
    cluster = Cluster()
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in names:
        started = time.time()
        try:
            results[name] = DRILLS[name](cluster)
        except Exception as err:  # noqa: BLE001 - the verifier reports it
            results[name] = {"error": f"{type(err).__name__}: {err}", "drill_seconds": round(time.time() - started, 1)}
        out.write_text(json.dumps(results, indent=2))
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
