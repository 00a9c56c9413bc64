"""The Prometheus exporter (redis_exporter_enabled): Redis's figures for a peer, on the cluster
address only, from an unprivileged, hardened unit whose login only root can read."""

from airflow_ops_testlib import assert_exporter_hardened_on_cluster_address, fetch_on, host_address

ENV_FILE = "/etc/airflow-ops/redis-exporter.env"
PASSWORD = "molecule-broker-Secret-1"


def test_peer_reads_redis_figures_from_the_exporter(host):
    """This host scrapes the other one's exporter over the network, as Prometheus would. The side
    effect restarted and killed both redis-servers: the exporter logs in again by itself."""
    me = host.backend.get_hostname()
    peer = "redis-debian13" if me == "redis-debian12" else "redis-debian12"
    status, body = fetch_on(host, f"http://{host_address(host, peer)}:9121/metrics")
    assert status == 200
    lines = body.splitlines()
    assert "redis_up 1" in lines, "the exporter does not reach Redis with the password"
    assert any(line.startswith("redis_connected_clients ") for line in lines)
    assert any(line.startswith("redis_aof_enabled 1") for line in lines), "the broker's AOF is not reported"


def test_exporter_runs_unprivileged_on_the_cluster_address_only(host):
    assert_exporter_hardened_on_cluster_address(host, "prometheus-redis-exporter", 9121)


def test_exporter_login_is_readable_by_root_only(host):
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert host.run(f"sudo -u prometheus cat {ENV_FILE}").rc != 0
    # Nor is the password on the exporter's command line, where any user's ps would show it.
    assert PASSWORD not in host.check_output("ps -eo args")
