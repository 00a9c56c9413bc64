"""The Prometheus exporter (redis_exporter_enabled): Redis's figures for a peer, on the cluster
address only, from an unprivileged, hardened unit whose login only root can read."""

import shlex
import time

from airflow_ops_testlib import (assert_exporter_hardened_on_cluster_address, fetch_on, host_address, molecule_host, record_figure,
                                 redis_acl)

ENV_FILE = "/etc/airflow-ops/redis-exporter.env"
PASSWORD_FILE = "/etc/airflow-ops/credentials/prometheus-redis-exporter/passwords"
PROBE_PORT = 16399
# A stand-in Redis on the peer that answers every command with an error and logs what it got.
LISTENER = f"""
import socket
server = socket.create_server(("0.0.0.0", {PROBE_PORT}), reuse_port=True)
server.settimeout(30)
with open("/tmp/airflow-ops-scrape-probe.log", "wb") as log:
    try:
        while True:
            conn, _ = server.accept()
            conn.settimeout(3)
            try:
                while data := conn.recv(4096):
                    log.write(data)
                    log.flush()
                    conn.sendall(b"-ERR unknown command\\r\\n")
            except OSError:
                pass
            conn.close()
    except OSError:
        pass
"""
PASSWORD = "molecule-broker-Secret-1"


def exporter_password() -> str:
    return redis_acl.user_password(PASSWORD, "exporter")


def test_peer_reads_redis_figures_from_the_exporter(host):
    """This host scrapes the other one's exporter over the network, as Prometheus would. The side
    effect restarted and killed both redis-servers: the exporter logs in again by itself."""
    me = host.backend.get_hostname()
    peer = "redis-debian13" if me == "redis-debian12" else "redis-debian12"
    status, body = fetch_on(host, f"http://{host_address(host, peer)}:9121/metrics")
    assert status == 200
    lines = body.splitlines()
    assert "redis_up 1" in lines, "the exporter does not reach Redis as its user"
    assert any(line.startswith("redis_connected_clients ") for line in lines)
    assert any(line.startswith("redis_aof_enabled 1") for line in lines), "the broker's AOF is not reported"


def test_exporter_runs_unprivileged_on_the_cluster_address_only(host):
    assert_exporter_hardened_on_cluster_address(host, "prometheus-redis-exporter", 9121)


def test_exporter_login_is_readable_by_root_and_the_exporter_only(host):
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert PASSWORD not in env.content_string and exporter_password() not in env.content_string
    assert 'REDIS_USER="exporter"' in env.content_string
    passwords = host.file(PASSWORD_FILE)
    assert (passwords.user, passwords.group, passwords.mode) == ("root", "prometheus", 0o640)
    assert host.run(f"sudo -u nobody cat {PASSWORD_FILE}").rc != 0
    # Nor is the password on the exporter's command line, where any user's ps would show it.
    assert exporter_password() not in host.check_output("ps -eo args")


def test_a_scrape_of_another_target_gets_no_password(host):
    """/scrape?target= makes the exporter connect wherever it is told: a stand-in Redis on the peer
    logs what arrives. The exporter connects, and sends no password (its password file holds one
    only for its own Redis)."""
    me = host.backend.get_hostname()
    peer_name = "redis-debian13" if me == "redis-debian12" else "redis-debian12"
    peer = molecule_host(peer_name)
    peer.run("rm -f /tmp/airflow-ops-scrape-probe.log")
    peer.run(f"setsid nohup timeout 40 python3 -c {shlex.quote(LISTENER)} >/dev/null 2>&1 &")
    time.sleep(2)
    target = f"redis://{host_address(host, peer_name)}:{PROBE_PORT}"
    status, body = fetch_on(host, f"http://{host_address(host)}:9121/scrape?target={target}")
    time.sleep(2)
    received = peer.run("cat /tmp/airflow-ops-scrape-probe.log").stdout
    record_figure(f"redis exporter scraping {target} sent: {received[:200]!r}")
    assert status == 200 and "redis_up 1" not in body.splitlines(), body[-500:]
    assert received, "the exporter did not connect to the target it was told to scrape"
    assert "AUTH" not in received.upper(), received[:500]
    assert PASSWORD not in received and exporter_password() not in received, received[:500]
