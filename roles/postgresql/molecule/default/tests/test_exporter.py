"""The Prometheus exporter (postgresql_exporter_enabled): the server's figures for a peer, on the
cluster address only, from an unprivileged, hardened unit whose login reads statistics only."""

from airflow_ops_testlib import assert_exporter_hardened_on_cluster_address, fetch_on, host_address

testinfra_hosts = ["ansible://postgresql"]

OTHER_SERVER = {"pg-debian12": "pg-debian13", "pg-debian13": "pg-debian12"}


def test_peer_reads_the_server_figures_from_the_exporter(host):
    """This server scrapes the other one's exporter over the network, as Prometheus would."""
    other = OTHER_SERVER[host.backend.get_hostname()]
    status, body = fetch_on(host, f"http://{host_address(host, other)}:9187/metrics")
    assert status == 200
    lines = body.splitlines()
    assert "pg_up 1" in lines, "the exporter does not log in"
    # pg_stat_database of the Airflow databases: the login reads statistics (pg_monitor).
    assert any(line.startswith("pg_stat_database_xact_commit{") and 'datname="airflow"' in line for line in lines)
    assert any(line.startswith("pg_stat_database_xact_commit{") and 'datname="airflow_celery"' in line for line in lines)


def test_exporter_runs_unprivileged_on_the_cluster_address_only(host):
    assert_exporter_hardened_on_cluster_address(host, "prometheus-postgres-exporter", 9187)


def test_exporter_login_reads_statistics_and_nothing_else(host):
    def as_prometheus(database, sql):
        return host.run(f"runuser -u prometheus -- psql -w -h /run/postgresql -d {database} -v ON_ERROR_STOP=1 -Atc \"{sql}\"")

    assert as_prometheus("postgres", "SELECT pg_has_role('prometheus', 'pg_monitor', 'MEMBER')").stdout.strip() == "t"
    # pg_hba admits it to the postgres database alone, and over the local socket alone.
    for database in ("airflow", "airflow_celery"):
        denied = as_prometheus(database, "SELECT 1")
        assert denied.rc != 0 and "pg_hba.conf rejects connection" in denied.stderr
    remote = host.run(f"runuser -u prometheus -- psql -w -h {host_address(host)} -d postgres -Atc 'SELECT 1'")
    assert remote.rc != 0
    # No superuser, no role or database creation.
    flags = as_prometheus("postgres", "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'prometheus'")
    assert flags.stdout.strip() == "f|f|f"
