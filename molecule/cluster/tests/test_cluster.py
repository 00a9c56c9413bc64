"""The cluster as its users see it: DAG runs spread over the workers, logs readable through the
api server, Flower behind a password; a re-run of site.yml that changes nothing but a new user,
restarts nothing and runs each Airflow task once per host; a new worker that joined (side_effect) without restarting
anything else. Bad inventories are the preflight scenario's."""

import hashlib
import json
import os
import shlex
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from airflow_ops_testlib import (AirflowApi, airflow_component_units, assert_airflow_unit_runs_hardened, container_ip, http,
                                 inventory_secrets, listening, molecule_host, record_figure, redis_acl, side_effect,
                                 side_effect_run, unit_properties, use_cluster_ca, web_auth)

# The checks run from the controller; one host keeps pytest from repeating them per host.
testinfra_hosts = ["ansible://cl-api"]

DAG = "airflow_ops_fanout"
FLOWER_AUTH = ("ops", "molecule-Flower-Secret-1")
AIRFLOW_HOSTS = ["cl-broker", "cl-scheduler", "cl-api", "cl-worker1", "cl-worker2"]
# What only the control plane may hold (molecule.yml's test-only values).
CONTROL_PLANE_SECRETS = {
    "metadata database password": "molecule-db-Secret-1",
    "Fernet key": "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    "JWT secret": "molecule-jwt-secret-key-1-9f4c2a7e5b1d8036c4e9a2f7b5d1c8e3a6f0b9d2c7e4a1f5",
    "admin password": "molecule-Admin-Secret-1",
    "broker admin password (redis_password)": "molecule-broker-Secret-1",
}
METADATA_LOGIN = ("airflow", "airflow", "molecule-db-Secret-1")  # user, database, password
RESULTS_LOGIN = ("airflow_celery", "airflow_celery", "molecule-results-Secret-1")


# site_tls is on: the UI, REST API and Flower answer HTTPS, verified against the cluster's CA.
CA = use_cluster_ca("cl-api")
API = f"https://{container_ip('cl-api')}:8080"
FLOWER = f"https://{container_ip('cl-broker')}:5555"


@pytest.fixture(scope="module")
def api():
    return AirflowApi(API, "admin", "molecule-Admin-Secret-1")


@pytest.fixture(scope="module")
def first_run(api):
    run = api.run_dag(DAG)
    return run, api.task_instances(DAG, run["dag_run_id"])


def flower_workers(auth=FLOWER_AUTH):
    """Flower's /api/workers: (status, workers by name)."""
    return http("GET", f"{FLOWER}/api/workers?refresh=1", basic=auth)


def in_flower(name):
    status, workers = flower_workers()
    return status == 200 and any(name in worker for worker in workers)


def unit_start_times(record):
    """{"host/unit": ActiveEnterTimestamp} as side_effect recorded them (before, reconverge, scale-out)."""
    lines = json.loads(side_effect(f"units-{record}.json").read_text())
    return {f"{host}/{line.split(' ', 1)[0]}": line.split(" ", 1)[1] for host, units in lines.items() for line in units}


def test_dag_run_succeeds_on_both_workers(first_run):
    run, tasks = first_run
    assert run["state"] == "success", tasks
    work = [t for t in tasks if t["task_id"].startswith("work_")]
    assert len(work) >= 20
    assert all(t["state"] == "success" for t in work)
    assert {"cl-worker1", "cl-worker2"} <= {t["hostname"] for t in work}


def test_task_logs_from_each_worker_are_readable_through_the_api_server(api, first_run):
    run, tasks = first_run
    for worker in ("cl-worker1", "cl-worker2"):
        task = next(t for t in tasks if t["hostname"] == worker and t["task_id"].startswith("work_"))
        log = api.task_log(DAG, run["dag_run_id"], task["task_id"])
        assert f"ran on {worker}" in log, log[:2000]


def test_flower_lists_both_workers_with_credentials():
    for name in ("cl-worker1", "cl-worker2"):
        assert in_flower(name), flower_workers()


def test_flower_refuses_requests_without_credentials():
    status, _unused = flower_workers(auth=None)
    assert status == 401


INCLUDES = {"include_tasks", "include_role", "ansible.builtin.include_tasks", "ansible.builtin.include_role"}

# What adding a user to airflow_users changes: the users, on the host that applies them.
USER_TASKS = {"airflow_ops.celery._airflow_common : Create or update the users",
              "airflow_ops.celery._airflow_common : Record which users were applied"}


def test_reconverge_changes_only_the_new_user_and_restarts_nothing(api):
    """site.yml again, with a Viewer added to airflow_users: the users are applied once, on one
    host; nothing else changes and no unit restarts. The Viewer can log in."""
    run = side_effect_run("reconverge")
    assert run.returncode == 0, run.output[-5000:]
    changed = run.changed_tasks()
    assert {task for task, _unused in changed} == USER_TASKS, sorted(changed)
    assert len({host for _unused, host in changed}) == 1, sorted(changed)
    assert unit_start_times("reconverge") == unit_start_times("before")
    record_figure(f"re-converge (-vvv, 6 hosts): {side_effect('reconverge.delta').read_text().strip()}; "
                  f"slowest tasks: {run.slowest_tasks()}")
    viewer = AirflowApi(API, "viewer", "molecule-Viewer-Secret-1")
    assert viewer.get(f"/api/v2/dags/{DAG}")["dag_id"] == DAG


def test_check_mode_on_a_converged_host_predicts_no_change():
    run = side_effect_run("check-db")
    assert run.returncode == 0, run.output[-3000:]
    assert run.changed == 0, run.output[-3000:]


def test_each_airflow_task_runs_once_per_host():
    """The shared install and configuration run once on every Airflow host, whatever its roles;
    no task of the Airflow roles runs twice on one host."""
    roles = ("airflow_ops.celery._airflow_common", "airflow_ops.celery.airflow", "airflow_ops.celery.worker",
             "airflow_ops.celery.flower")
    runs = {}
    # Every result of a task of those roles, skipped ones too; the include tasks (entries into the
    # shared role) and the argument checks of each entry are not work done twice.
    for result in side_effect_run("reconverge").results:
        if (result["task"].startswith(tuple(role + " :" for role in roles))
                and result["action"] not in INCLUDES and "Validating arguments" not in result["task"]):
            runs[(result["task"], result["host"])] = runs.get((result["task"], result["host"]), 0) + 1
    assert runs, "no result of the Airflow roles recorded"
    assert {key: n for key, n in runs.items() if n > 1} == {}
    config = "airflow_ops.celery._airflow_common : Write airflow.cfg"
    assert sorted(host for (name, host) in runs if name == config) == sorted(AIRFLOW_HOSTS)


def test_each_airflow_host_enters_the_shared_setup_once():
    """Counted from the run's entries (include events): the shared install and configuration
    (_airflow_common, entry point host) and the pruning of old virtualenvs after the host's last
    unit (entry point finish) are each entered once per Airflow host, whatever its roles."""
    run = side_effect_run("reconverge")
    for entry_point in ("host", "finish"):
        entries = run.entries("_airflow_common", entry_point)
        assert entries == {host: 1 for host in AIRFLOW_HOSTS}, (entry_point, entries)


def test_a_viewer_cannot_trigger_or_unpause():
    viewer = AirflowApi(API, "viewer", "molecule-Viewer-Secret-1")
    status, body = viewer.request("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None})
    assert status == 403, body
    status, body = viewer.request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
    assert status == 403, body


def test_task_code_on_a_worker_finds_no_control_plane_secret():
    """As the airflow user (what task code runs as): every readable file, and the environment and
    command line of every process it may read, hold none of the control plane's secrets."""
    worker = molecule_host("cl-worker1")
    # The patterns come from a file under /dev (not scanned), so the scan's own command lines
    # hold no secret for it to find.
    patterns = "/dev/shm/secret-patterns"
    worker.run(f"printf '%s\\n' {' '.join(map(shlex.quote, CONTROL_PLANE_SECRETS.values()))} > {patterns}"
               f" && chmod 0644 {patterns}")
    scan = (f"grep -rIlsF -f {patterns} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; "
            f"grep -lsF -f {patterns} /proc/[0-9]*/environ /proc/[0-9]*/cmdline; true")
    found = worker.run(f"runuser -u airflow -- sh -c {shlex.quote(scan)}")
    worker.run(f"rm -f {patterns}")
    assert found.stdout.split() == [], found.stdout
    # The control: the same scan does find what a worker needs (its broker user's password).
    mine = redis_acl.user_password(CONTROL_PLANE_SECRETS["broker admin password (redis_password)"], "worker")
    control = worker.run(f"runuser -u airflow -- sh -c {shlex.quote(f'grep -rIlsF -e {mine} /etc /opt/airflow; true')}")
    assert "/etc/airflow/airflow.cfg" in control.stdout.split()


PGBOUNCER, POSTGRESQL = 6432, 5432


def psql(host, login, database=None, port=PGBOUNCER):
    """Log in to the cluster's database from host, through PgBouncer (what every Airflow host uses) or
    to PostgreSQL itself: (rc, output)."""
    user, own_database, password = login
    code = ("import psycopg2, sys\n"
            "try:\n"
            f"    psycopg2.connect(host={container_ip('cl-db')!r}, port={port}, user={user!r}, password=sys.stdin.read(),"
            f" dbname={(database or own_database)!r}, connect_timeout=10).close()\n"
            "except psycopg2.Error as error:\n"
            "    sys.exit(str(error))\n")
    result = molecule_host(host).run(f"printf %s {shlex.quote(password)} | /opt/airflow/venv/bin/python -c {shlex.quote(code)}")
    return result.rc, result.stdout + result.stderr


# Each host's Airflow units at the end of the scenario: those of its groups (molecule.yml), no other;
# cl-worker3, decommissioned, none (what the worker and flower roles install on a host of their own).
COMPONENTS = {
    "cl-broker": ["airflow-flower.service"],
    "cl-scheduler": ["airflow-api-server.service", "airflow-dag-processor.service", "airflow-scheduler.service",
                     "airflow-triggerer.service"],
    "cl-api": ["airflow-api-server.service"],
    "cl-worker1": ["airflow-worker.service"],
    "cl-worker2": ["airflow-worker.service"],
    "cl-worker3": [],
    "cl-db": [],
}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_each_host_runs_the_airflow_components_of_its_groups_and_no_other(name):
    host = molecule_host(name)
    assert airflow_component_units(host) == COMPONENTS[name]
    for unit in COMPONENTS[name]:
        assert_airflow_unit_runs_hardened(host, unit)


def test_a_worker_reaches_only_the_result_backend():
    """Even with the metadata login's password, a worker host cannot log in to the metadata
    database through PgBouncer; the result-backend login works there and nowhere else."""
    rc, out = psql("cl-worker1", RESULTS_LOGIN)
    assert rc == 0, out
    rc, out = psql("cl-worker1", METADATA_LOGIN)
    assert rc != 0 and "login rejected" in out, out
    rc, out = psql("cl-worker1", RESULTS_LOGIN, database="airflow")
    assert rc != 0, out


def test_behind_pgbouncer_postgresql_admits_only_the_migrating_host():
    """PostgreSQL itself: the scheduler host (airflow db migrate) logs in as the metadata login; a worker
    cannot even open the port (firewall), and pg_hba names no other remote host."""
    rc, out = psql("cl-scheduler", METADATA_LOGIN, port=POSTGRESQL)
    assert rc == 0, out
    rc, out = psql("cl-worker1", RESULTS_LOGIN, port=POSTGRESQL)
    assert rc != 0 and "Connection refused" in out, out
    hba = molecule_host("cl-db").check_output("runuser -u postgres -- psql -XAtc 'SELECT address FROM pg_hba_file_rules "
                                              "WHERE type LIKE $$host%$$ AND address IS NOT NULL'").split()
    remote = sorted({address for address in hba if address not in ("127.0.0.1", "::1", "0.0.0.0", "::")})
    assert remote == [container_ip("cl-scheduler")], hba


def test_pgbouncer_runs_as_its_own_user_and_holds_no_password():
    """PgBouncer: its own unprivileged user under the collection's hardening, restarted on failure; its
    users file holds the logins' SCRAM verifiers (root:pgbouncer 0640), never a password."""
    db = molecule_host("cl-db")
    assert db.service("pgbouncer").is_running and db.service("pgbouncer").is_enabled
    shown = unit_properties(db, "pgbouncer", "User", "Restart", "NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet",
                            "LimitNOFILE")
    assert shown == {"User": "pgbouncer", "Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                     "CapabilityBoundingSet": "", "LimitNOFILE": "65536"}, shown
    users = db.file("/etc/pgbouncer/airflow-ops-users.txt")
    assert (users.user, users.group, users.mode) == ("root", "pgbouncer", 0o640)
    content = db.check_output("cat /etc/pgbouncer/airflow-ops-users.txt")
    assert content.count("SCRAM-SHA-256$4096:") == 2
    for _user, _database, password in (METADATA_LOGIN, RESULTS_LOGIN):
        assert password not in content
        assert db.run(f"grep -rlF {shlex.quote(password)} /etc/pgbouncer /etc/postgresql").stdout == ""


BALANCER = "airflow-ops-haproxy"


def test_each_workers_tasks_reach_both_api_servers_through_its_own_haproxy():
    """Issue #27: two api servers (cl-api, and cl-scheduler beside its scheduler). Each worker host's airflow.cfg
    sends its tasks' execution API calls to HAProxy on loopback, which runs as haproxy under the collection's
    hardening, listens on loopback alone and answers with an api server's health page over TLS verified for
    127.0.0.1 (the api servers' certificates name it); the package's own unit is off; no other host runs it."""
    for name in ("cl-worker1", "cl-worker2"):
        host = molecule_host(name)
        assert host.check_output("grep -E '^execution_api_server_url ' /etc/airflow/airflow.cfg").split("=", 1)[1].strip() \
            == "https://127.0.0.1:8079/execution/", name
        service = host.service(BALANCER)
        assert service.is_running and service.is_enabled, name
        shown = unit_properties(host, BALANCER, "User", "Restart", "NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet")
        assert shown == {"User": "haproxy", "Restart": "always", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                         "CapabilityBoundingSet": ""}, shown
        assert not host.service("haproxy").is_running and not host.service("haproxy").is_enabled, name
        assert listening(host, 8079) == ["127.0.0.1:8079"], name
        health = host.run("python3 -c " + shlex.quote(
            "import ssl, urllib.request; print(urllib.request.urlopen('https://127.0.0.1:8079/api/v2/monitor/health', "
            "context=ssl.create_default_context(cafile='/etc/airflow-ops/tls/ca.crt'), timeout=20).status)"))
        assert health.stdout.strip() == "200", (name, health.stdout, health.stderr)
    # the decommissioned cl-worker3 had one: the decommission playbook removed it
    for name in ("cl-scheduler", "cl-api", "cl-broker", "cl-worker3"):
        assert not molecule_host(name).file(f"/etc/systemd/system/{BALANCER}.service").exists, name


def test_every_celery_client_finds_the_primary_through_the_sentinels_with_keepalive():
    """Each Airflow host with a broker login names the three Sentinels (sentinel:// URLs, the master name, its
    own user on the Sentinels too) and the collection's Celery settings (root's module), which put TCP keepalive
    on the broker connections: a worker's connections to the primary carry keepalive timers, so a stopped broker
    host is noticed in seconds, not hours."""
    sentinels = [f"{container_ip(name)}:26379" for name in ("cl-broker", "cl-scheduler", "cl-worker1")]
    for name in ("cl-scheduler", "cl-worker2", "cl-broker"):
        host = molecule_host(name)
        config = host.check_output("grep -E '^(broker_url|master_name|celery_config_options) ' /etc/airflow/airflow.cfg")
        assert [url.split("@")[1] for url in config.split("broker_url = ")[1].split()[0].split(";")] == [f"{s}/0" for s in sentinels]
        assert "master_name = airflow" in config and "celery_config_options = airflow_ops_celery.CELERY_CONFIG" in config, name
        module = host.file("/opt/airflow/config/airflow_ops_celery.py")
        assert (module.user, module.group, module.mode) == ("root", "root", 0o644)
    worker = molecule_host("cl-worker2")
    connections = worker.check_output("ss -Htnoe state established '( dport = :6379 )'").splitlines()
    assert connections and all("timer:(keepalive" in line for line in connections), connections


def test_every_airflow_host_connects_through_pgbouncer_and_only_the_scheduler_knows_the_direct_url():
    """airflow.cfg points the sync and async engines at PgBouncer's port, the async one on psycopg 3 with the
    collection's connect arguments (root's module: no server-side prepared statements); the migration's
    direct URL is on the first scheduler host alone, root:airflow 0640."""
    for name in ("cl-scheduler", "cl-api"):
        host = molecule_host(name)
        config = host.check_output("grep -E '^(sql_alchemy_conn|sql_alchemy_conn_async|sql_alchemy_connect_args_async) ' "
                                   "/etc/airflow/airflow.cfg")
        assert f"@{container_ip('cl-db')}:{PGBOUNCER}/airflow?" in config and "postgresql+psycopg://" in config, name
        assert "airflow_ops_database.ASYNC_CONNECT_ARGS" in config, name
        module = host.file("/opt/airflow/config/airflow_ops_database.py")
        assert (module.user, module.group, module.mode) == ("root", "root", 0o644)
        assert host.file("/opt/airflow/config").user == "root"
    for name in ("cl-worker1", "cl-worker2"):
        config = molecule_host(name).check_output("grep -E '^result_backend ' /etc/airflow/airflow.cfg")
        assert f"@{container_ip('cl-db')}:{PGBOUNCER}/airflow_celery" in config, name
    direct = molecule_host("cl-scheduler").file("/etc/airflow/migrate-database.url")
    assert (direct.user, direct.group, direct.mode) == ("root", "airflow", 0o640)
    assert f"@{container_ip('cl-db')}:{POSTGRESQL}/airflow" in direct.content_string
    for name in ("cl-api", "cl-worker1"):
        assert not molecule_host(name).file("/etc/airflow/migrate-database.url").exists, name


def test_the_worker_unit_is_memory_bounded_without_throttling():
    shown = unit_properties(molecule_host("cl-worker1"), "airflow-worker", "MemoryMax", "MemorySwapMax", "MemoryHigh",
                            "OOMPolicy")
    assert shown == {"MemoryMax": str(2 << 30), "MemorySwapMax": "0", "MemoryHigh": "infinity", "OOMPolicy": "continue"}, shown


# site_firewall is on: cl-outsider, on the cluster's network but in no group, can open none of
# the service ports (refused by a TCP reset), whatever it knows.
@pytest.mark.parametrize("host, port", [("cl-broker", 6379), ("cl-broker", 26379), ("cl-broker", 5555), ("cl-db", 5432), ("cl-db", 6432), ("cl-api", 8080),
                                        ("cl-worker1", 8793), ("cl-worker2", 8793),
                                        ("cl-broker", 9121), ("cl-db", 9187), ("cl-db", 9090)])
def test_from_outside_no_service_port_opens(host, port):
    out = molecule_host("cl-outsider").run(f"timeout 10 bash -c 'exec 3<>/dev/tcp/{container_ip(host)}/{port}'")
    assert out.rc != 0 and "Connection refused" in out.stderr, (host, port, out.stderr)


CLUSTER_HOSTS = ["cl-broker", "cl-db", "cl-scheduler", "cl-api", "cl-worker1", "cl-worker2"]


def listening_ports(host):
    """The TCP ports a host listens on beyond loopback (from ss: every socket, not only the known ones)."""
    ports = set()
    for line in molecule_host(host).check_output("ss -Htln").splitlines():
        local = line.split()[3]
        address, port = local.rsplit(":", 1)
        if address.strip("[]").split("%")[0] not in ("127.0.0.1", "::1") and not address.startswith("127."):
            ports.add(int(port))
    return sorted(ports)


def test_from_outside_every_listening_port_refuses():
    """Whatever listens beyond loopback on a cluster host (the triggerer's log server included),
    the outsider's connection is refused: no port is open without a rule."""
    outsider = molecule_host("cl-outsider")
    opened, probed = [], {}
    for host in CLUSTER_HOSTS:
        probed[host] = listening_ports(host)
        for port in probed[host]:
            out = outsider.run(f"timeout 10 bash -c 'exec 3<>/dev/tcp/{container_ip(host)}/{port}'")
            if not (out.rc != 0 and "Connection refused" in out.stderr):
                opened.append(f"{host}:{port} ({out.rc}, {out.stderr.strip()[-80:]})")
    record_figure(f"ports the outsider found refused: {json.dumps(probed)}")
    assert 8794 in probed["cl-scheduler"] and 8793 in probed["cl-worker1"], probed
    assert opened == [], opened


def test_the_firewall_admits_what_the_cluster_needs():
    """The control for the test above: from cl-worker1 the broker, PgBouncer and the api server open,
    PostgreSQL itself and Flower (admin networks only) do not; nothing in the rules of the worker admits the outsider."""
    worker = molecule_host("cl-worker1")
    for host, port, opens in [("cl-broker", 6379, True), ("cl-broker", 26379, True), ("cl-db", 6432, True), ("cl-db", 5432, False), ("cl-api", 8080, True),
                              ("cl-broker", 5555, False), ("cl-broker", 9121, False), ("cl-db", 9090, False)]:
        out = worker.run(f"timeout 10 bash -c 'exec 3<>/dev/tcp/{container_ip(host)}/{port}'")
        assert (out.rc == 0) == opens, (host, port, out.stderr)
    assert container_ip("cl-outsider") not in worker.check_output("nft list table inet airflow_ops")
    # The api server reads task logs from the workers and trigger logs from the triggerer.
    for host, port in [("cl-worker1", 8793), ("cl-scheduler", 8794)]:
        out = molecule_host("cl-api").run(f"timeout 10 bash -c 'exec 3<>/dev/tcp/{container_ip(host)}/{port}'")
        assert out.rc == 0, (host, port, out.stderr)


# A TLS handshake from a host, verified against the CA it was given, with the address as the
# name (what the clients use); PostgreSQL first asks for TLS (its SSLRequest).
TLS_PROBE = """
import hashlib, socket, ssl, struct, sys
host, port, postgres = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "postgres"
sock = socket.create_connection((host, port), timeout=20)
if postgres:
    sock.sendall(struct.pack("!ii", 8, 80877103))
    assert sock.recv(1) == b"S", "the server declined TLS"
context = ssl.create_default_context(cafile="/etc/airflow-ops/tls/ca.crt")
with context.wrap_socket(sock, server_hostname=host) as tls:
    print(tls.version(), tls.getpeercert()["subjectAltName"], hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())
"""


def tls_probe(host, port, kind, via="cl-worker1"):
    """A TLS handshake with host:port from cl-worker1 (the firewall admits it to Redis, PostgreSQL and the api
    server) or another host, verified against the cluster CA: "TLS version, subjectAltName, SHA-256 of the certificate"."""
    out = molecule_host(via).run(f"python3 -c {shlex.quote(TLS_PROBE)} {container_ip(host)} {port} {kind}")
    assert out.rc == 0, out.stdout + out.stderr
    return out.stdout


def served_certificate(host, port, kind):
    """The SHA-256 fingerprint of the certificate host:port serves: through tls_probe; from the controller (an admin
    network) for Flower and Prometheus ("admin"); from the monitoring host for the PostgreSQL exporter ("monitoring")."""
    if kind == "monitoring":
        return tls_probe(host, port, "https", via="cl-db").split()[-1]
    if kind == "admin":
        with socket.create_connection((container_ip(host), port), timeout=20) as sock, \
                ssl.create_default_context(cafile=CA).wrap_socket(sock, server_hostname=container_ip(host)) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    # PostgreSQL itself admits the migrating scheduler host alone (behind PgBouncer); the rest from a worker.
    return tls_probe(host, port, kind, via="cl-scheduler" if port == 5432 else "cl-worker1").split()[-1]


def certificate_fingerprint(pem):
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize("host, port, kind", [("cl-broker", 6379, "redis"), ("cl-broker", 26379, "redis"), ("cl-db", 6432, "postgres"),
                                              ("cl-api", 8080, "https")])
def test_each_cluster_endpoint_presents_a_certificate_the_ca_verifies(host, port, kind):
    answer = tls_probe(host, port, kind)
    assert answer.startswith("TLSv1."), answer
    assert container_ip(host) in answer


TLS_SERVERS = [("cl-broker", "redis", 6379, "redis"), ("cl-worker1", "redis", 6379, "redis"), ("cl-broker", "flower", 5555, "admin"),
               ("cl-db", "postgresql", 5432, "postgres"), ("cl-api", "api_server", 8080, "https"),
               ("cl-db", "postgresql_exporter", 9187, "monitoring"), ("cl-db", "prometheus", 9090, "admin")]


def test_each_tls_server_has_a_key_of_its_own_readable_by_its_user_alone():
    """The broker host's Redis and Flower, and every other TLS server, present different keys; each key file a
    service reads belongs to its user (or root with its group) and no one else may read it; no host-wide key is left."""
    public_keys = {}
    for host, service, port, kind in TLS_SERVERS:
        pem = molecule_host(host).check_output(f"cat /etc/airflow-ops/tls/{service}.crt")
        public_keys[(host, service)] = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert served_certificate(host, port, kind) == certificate_fingerprint(pem), (host, service)
    assert len(set(public_keys.values())) == len(TLS_SERVERS), sorted(public_keys)
    broker = molecule_host("cl-broker")
    for path, owner, group, mode in [("/etc/redis/tls/server.key", "redis", "redis", 0o600),
                                     ("/etc/airflow/tls/flower.key", "root", "airflow", 0o640)]:
        key = broker.file(path)
        assert (key.user, key.group, key.mode) == (owner, group, mode), path
    # Flower's user cannot read Redis's key.
    assert broker.run("runuser -u airflow -- cat /etc/redis/tls/server.key").rc != 0
    # On the database host Prometheus and the exporter (both run as prometheus) read theirs, not PostgreSQL's.
    db = molecule_host("cl-db")
    for path in ("/etc/prometheus/airflow-ops-tls/prometheus.key", "/etc/airflow-ops/credentials/prometheus-postgres-exporter/tls.key"):
        key = db.file(path)
        assert (key.user, key.group, key.mode) == ("root", "prometheus", 0o640), path
    assert db.run("runuser -u prometheus -- cat /etc/postgresql/airflow-ops-tls/server.key").rc != 0
    for host in ("cl-broker", "cl-db", "cl-api", "cl-worker1"):
        expected = ["ca.crt"] + [f"{service}.{end}" for name, service, _port, _kind in TLS_SERVERS if name == host for end in ("crt", "key")]
        assert sorted(molecule_host(host).check_output("ls /etc/airflow-ops/tls").split()) == sorted(expected), host


# PgBouncer presents the PostgreSQL service's certificate (its own copy, reloaded on renewal).
@pytest.mark.parametrize("host, service, port, kind", TLS_SERVERS + [("cl-db", "postgresql", 6432, "postgres")])
def test_a_renewed_certificate_is_served_right_after_the_run(host, service, port, kind):
    """The renewal run (side_effect) renewed every certificate (site_tls_renew_days beyond their end): each TLS port
    serves its service's new certificate as soon as the run ends; Redis and PostgreSQL reloaded it, not restarted."""
    before = certificate_fingerprint(json.loads(side_effect("certificates-before-renewal.json").read_text())[f"{host}/{service}"])
    now = certificate_fingerprint(molecule_host(host).check_output(f"cat /etc/airflow-ops/tls/{service}.crt"))
    assert now != before, f"{host}'s {service} certificate was not signed again"
    assert served_certificate(host, port, kind) == now, f"{host}:{port} serves another certificate than {service}'s new one"
    if kind in ("redis", "postgres"):
        unit = {"redis": "redis-server", "postgres": "postgresql@"}[kind]
        started = {name: at for name, at in unit_start_times("renewal").items() if name.startswith(f"{host}/{unit}")}
        assert started and started == {name: at for name, at in unit_start_times("before-renewal").items() if name in started}


def login_cookies(base, username, password):
    """Log in through FAB's form as a browser does; the Set-Cookie headers of the answer, by cookie name."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=CA)),
                                         urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)
    with opener.open(f"{base}/auth/login/", timeout=60) as page:
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": csrf}).encode()
    # Flask-WTF checks the Referer of a form posted over HTTPS (WTF_CSRF_SSL_STRICT), as a browser sends it.
    post = urllib.request.Request(f"{base}/auth/login/", data=form, headers={"Referer": f"{base}/auth/login/"})
    try:
        opener.open(post, timeout=60)
        raise AssertionError("the login did not redirect")
    except urllib.error.HTTPError as answer:  # the redirect after a login, not followed
        assert answer.code == 302, answer.code
        return {header.split("=", 1)[0]: header for header in answer.headers.get_all("Set-Cookie")}


def test_the_ui_session_cookies_are_secure_and_same_site():
    """Logged in over HTTPS through the UI's form, the session cookie and the token cookie carry
    Secure (never sent over plain HTTP), HttpOnly and SameSite=Lax."""
    cookies = login_cookies(API, "admin", "molecule-Admin-Secret-1")
    assert {"session", "_token"} <= set(cookies), cookies.keys()
    for name in ("session", "_token"):
        attributes = {part.strip().split("=")[0].lower(): part for part in cookies[name].split(";")[1:]}
        assert {"secure", "httponly"} <= set(attributes), (name, sorted(attributes))
        assert attributes["samesite"].strip().lower() == "samesite=lax", (name, attributes.get("samesite"))


def test_the_ui_and_flower_in_a_browser_over_https():
    """As make demo's last step, in headless Chromium that trusts the cluster's CA alone: the login
    form, the latest run's page and Flower's workers page, and the cookies the browser keeps after
    logging in (session: Secure, HttpOnly, SameSite=Lax). Screenshots in .cache/test-logs/cluster-browser/."""
    import importlib.util
    root = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    spec = importlib.util.spec_from_file_location("browser_check", root / "demo" / "browser_check.py")
    browser_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser_check)
    status, workers = flower_workers()
    assert status == 200 and workers, workers
    seen = browser_check.check(API, FLOWER, 120, "molecule-Admin-Secret-1", FLOWER_AUTH, sorted(workers),
                               out=root / ".cache" / "test-logs" / "cluster-browser", ca_file=CA)
    cookies = {cookie["name"]: cookie for cookie in seen["cookies"]}
    assert (cookies["session"]["secure"], cookies["session"]["httpOnly"], cookies["session"]["sameSite"]) == (True, True, "Lax")


def test_the_ui_and_flower_verify_against_the_ca_from_an_admin_network():
    """From the controller (site_admin_networks): HTTPS with the names checked, and no plain HTTP."""
    import urllib.error
    import urllib.request
    for url, auth in ((f"{API}/api/v2/monitor/health", None), (f"{FLOWER}/healthcheck", FLOWER_AUTH)):
        status, _unused = http("GET", url, basic=auth)
        assert status == 200, url
        with pytest.raises(urllib.error.URLError) as err:
            urllib.request.urlopen(url, timeout=20, context=ssl.create_default_context())
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
    for url in (API.replace("https:", "http:") + "/api/v2/monitor/health", FLOWER.replace("https:", "http:") + "/healthcheck"):
        status, _unused = 0, None
        try:
            status, _unused = http("GET", url)
        except OSError:
            pass
        assert status not in (200, 401), url


def test_from_a_cluster_host_plain_tcp_to_the_broker_and_the_database_is_refused():
    worker = molecule_host("cl-worker1")
    probe = ("import socket, sys\n"
             "sock = socket.create_connection((sys.argv[1], 6379), timeout=10)\n"
             "sock.sendall(b'PING\\r\\n')\n"
             "try:\n"
             "    print(sock.recv(100))\n"
             "except OSError as error:\n"
             "    print(error)\n")
    out = worker.run(f"/opt/airflow/venv/bin/python -c {shlex.quote(probe)} {container_ip('cl-broker')}")
    assert out.rc == 0 and "PONG" not in out.stdout and "NOAUTH" not in out.stdout, out.stdout + out.stderr
    user, database, password = RESULTS_LOGIN
    code = ("import psycopg2, sys\n"
            "try:\n"
            f"    psycopg2.connect(host={container_ip('cl-db')!r}, port={PGBOUNCER}, user={user!r}, password=sys.stdin.read(),"
            f" dbname={database!r}, sslmode='disable', connect_timeout=10).close()\n"
            "except psycopg2.Error as error:\n"
            "    sys.exit(str(error))\n")
    out = worker.run(f"printf %s {shlex.quote(password)} | /opt/airflow/venv/bin/python -c {shlex.quote(code)}")
    assert out.rc != 0 and "SSL required" in out.stderr, out.stdout + out.stderr
    # The control: the same login with TLS works (test_a_worker_reaches_only_the_result_backend).


@pytest.mark.parametrize(
    "url",
    [
        "{api}/api/v2/dags",
        "{api}/api/v2/connections",
        "{api}/api/v2/config",
        "{api}/api/v2/dags/" + DAG + "/dagRuns",
        "{flower}/",
        "{flower}/api/workers",
        "{flower}/api/tasks",
        "{flower}/metrics",
        "{flower}/healthcheck",
    ],
)
def test_every_api_and_flower_path_needs_credentials(url):
    status, _unused = http("GET", url.format(api=API, flower=FLOWER))
    assert status in (401, 403), (url, status)


def test_new_worker_joined_with_limit_and_nothing_else_restarted(api):
    run = side_effect_run("scale-out")
    assert run.returncode == 0, run.output[-5000:]
    record_figure(f"scale-out (--limit cl-worker3, -vvv): {side_effect('scale-out.delta').read_text().strip()}; "
                  f"slowest tasks: {run.slowest_tasks()}")
    assert any("/airflow-" in unit for unit in unit_start_times("reconverge"))
    assert unit_start_times("scale-out") == unit_start_times("reconverge")
    # From then on it ran tasks (in the drills), before it was decommissioned (test_operations.py).
    ran = [ti for ti in api.every_task_instance("airflow_ops_hold") if ti["hostname"] == "cl-worker3"]
    assert [ti for ti in ran if ti["state"] == "success"], ran


@pytest.mark.parametrize("run_as", ["reconverge", "scale-out"])
def test_verbose_converge_prints_no_secret(run_as):
    """The re-converge that added a user (the whole cluster) and the new worker's converge ran with -vvv: none of the
    inventory's secret values, nor the new user's password, nor a broker user's password, is in their output."""
    secrets = inventory_secrets("cl-scheduler")
    # A list of bundles, whose keys test_git_bundle.py looks for line by line.
    secrets.pop("airflow_dag_bundles", None)
    assert len(secrets) >= 7, sorted(secrets)  # the scan looks for something
    secrets["new user's password"] = "molecule-Viewer-Secret-1"
    # The broker users' passwords site.yml derives from redis_password.
    secrets["PostgreSQL exporter's scrape password"] = web_auth.scrape_password(secrets["prometheus_basic_auth"], "postgresql")
    secrets.update({f"broker user {user}'s password": redis_acl.user_password(secrets["redis_password"], user)
                    for user in ("scheduler", "worker", "flower", "exporter")})
    log = side_effect(f"{run_as}.log").read_text()
    assert "ESTABLISH" in log  # it really was verbose
    # A login list ("user:password,...") counts with each password alone too.
    values = {name: [value] + [pair.split(":", 1)[1] for pair in value.split(",") if ":" in pair] for name, value in secrets.items()}
    printed = sorted(name for name, candidates in values.items() if any(c in log for c in candidates))
    assert printed == []


def test_the_cluster_ca_can_sign_only_host_certificates():
    """The CA site.yml made is pathlen:0: a certificate it signs cannot act as a CA of its own."""
    ca = x509.load_pem_x509_certificate(Path(CA).read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0, constraints
