#!/usr/bin/env python3
"""The move of a cluster set up before broker ACL users to them, with tasks queued; run by
side_effect.yml under `make test-upgrade`, judged by the verifier (test_acl_move.py).

    acl_move.py OUT.json LOG -- ansible-playbook ARGS...

First puts the broker and its clients back as the collection set them up before ACL users: Redis
with a password alone (`requirepass`, no users file: the `default` user with every command), every
airflow.cfg's broker_url and the Redis exporter logging in with that password; restarts them so
that each client is logged in as `default`. Then starts a run of more tasks than the workers have
slots, runs the given playbook (site.yml, which moves them) once some tasks run and the others
wait in the broker's queue, and waits for the run to end. Writes: the ACL LOG before the broker's
restart (which empties it), who was logged in to the broker before and after the playbook (CLIENT
LIST's users, by host), the ACL users after, the playbook's exit code and duration (its output
goes to LOG), and every task's state, try and host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from drills import REDIS_ADMIN_PASSWORD, WORKERS, Cluster, airflow_units, broker, broker_acl_log, container_ip, sh, wait_for

# Three workers of worker_concurrency 4 (molecule.yml; before cl-worker3's decommission).
SLOTS = 12
TASKS = 16
TASK_SECONDS = 30
CLIENT_HOSTS = ["cl-broker", "cl-scheduler", "cl-api", *WORKERS]
# What the collection wrote before ACL users (the redis scenario's side effect does the same to its broker).
OLD_BROKER = f"""
sed -i 's|^aclfile .*|requirepass "{REDIS_ADMIN_PASSWORD}"|' /etc/redis/conf.d/airflow-ops.conf
rm -f /etc/redis/users.acl
sed -i '/^Environment=REDIS_PASSWORD_FILE=/d' /etc/systemd/system/prometheus-redis-exporter.service.d/*.conf
sed -i '/^REDIS_USER=/d' /etc/airflow-ops/redis-exporter.env
echo 'REDIS_PASSWORD="{REDIS_ADMIN_PASSWORD}"' >> /etc/airflow-ops/redis-exporter.env
systemctl daemon-reload
systemctl restart redis-server prometheus-redis-exporter
"""
# broker_url with no user: redis-py then sends AUTH with the password alone, as `default`.
OLD_CLIENT = f"sed -i -E 's#^(broker_url = rediss?://)[^:@/]*:[^@]*@#\\1:{REDIS_ADMIN_PASSWORD}@#' /etc/airflow/airflow.cfg"


def logins(user: str | None) -> dict[str, list[str]]:
    """The users the broker's clients are logged in as, by host. Left out: redis-cli's own
    connection, and connections that have not sent a command yet (`default` until they log in)."""
    hosts = {container_ip(host): host for host in CLIENT_HOSTS + ["cl-db"]}
    found: dict[str, set[str]] = {}
    for line in broker("CLIENT LIST", user).splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if fields.get("cmd") in ("client|list", "NULL"):
            continue
        address = fields.get("addr", "").rsplit(":", 1)[0]
        found.setdefault(hosts.get(address, address), set()).add(fields.get("user", "?"))
    return {host: sorted(users) for host, users in sorted(found.items())}


def exporter_up(timeout: float = 90) -> str | None:
    """redis_up as the Redis exporter reports it to the monitoring host, once it is 1 or after
    timeout (the last value; None if it never answered)."""
    url = f"http://{container_ip('cl-broker')}:9121/metrics"
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    deadline = time.monotonic() + timeout
    while True:
        out = sh("cl-db", f"python3 -c \"{script}\" | grep '^redis_up '", check=False)
        value = out.split()[-1] if out else None
        if value == "1" or time.monotonic() > deadline:
            return value
        time.sleep(3)


def restart_clients() -> None:
    for host in CLIENT_HOSTS:
        sh(host, OLD_CLIENT)
        units = sorted(airflow_units(host))
        sh(host, "systemctl restart " + " ".join(units))


def workers_answer() -> bool:
    return all(airflow_units(worker).get("airflow-worker.service") == "active running" for worker in WORKERS)


def main() -> int:
    out, log = Path(sys.argv[1]), Path(sys.argv[2])
    playbook = sys.argv[sys.argv.index("--") + 1:]
    record: dict = {"acl_log_before": broker_acl_log()}

    sh("cl-broker", OLD_BROKER)
    restart_clients()
    wait_for("the workers", workers_answer, timeout=300, interval=2)
    cluster = Cluster()
    record["acl_list_before"] = broker("ACL LIST", None).splitlines()
    record["exporter_up_before"] = exporter_up()

    run_id = cluster.start(tasks=TASKS, seconds=TASK_SECONDS)
    cluster.wait_holds(run_id, SLOTS, "running", timeout=300)
    # Logged in only now: every worker has taken its tasks through the broker as `default`.
    record["logins_before"] = logins(None)
    record["waiting_at_start"] = sum(1 for ti in cluster.holds(run_id) if ti["state"] != "running")

    started = time.time()
    with log.open("w") as fh:
        rc = subprocess.run(playbook, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    record.update(rc=rc, playbook_seconds=round(time.time() - started, 1))
    summary = cluster.summary(run_id, started)
    record.update(run_state=summary["run_state"], tries=summary["tries"], states=summary["states"],
                  hosts=summary["hosts"], left_running_or_queued=summary["left_running_or_queued"])
    record["logins_after"] = logins("admin")
    record["acl_list_after"] = broker("ACL LIST", "admin").splitlines()
    record["exporter_up_after"] = exporter_up()
    out.write_text(json.dumps(record, indent=1))
    print(f"acl move: rc {rc} in {record['playbook_seconds']} s; {record['waiting_at_start']} of {TASKS} tasks waiting at"
          f" its start; run {summary['run_state']}, tries {sorted(summary['tries'].values())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
