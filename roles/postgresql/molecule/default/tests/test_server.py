"""The servers: version from the distribution, settings from inputs, a database per login."""

import pytest

from pg import METADATA, RESULT_BACKEND, admin, cluster_version, psql

testinfra_hosts = ["ansible://postgresql"]


# What each distribution ships (the role reads it; nothing is hard-coded there).
VERSION_OF_RELEASE = {"bookworm": "15", "trixie": "17", "jammy": "14", "noble": "16"}
OTHER_SERVER = {"pg-debian12": "pg-debian13", "pg-debian13": "pg-debian12"}
LOGINS = pytest.mark.parametrize("credentials", [METADATA, RESULT_BACKEND], ids=["metadata", "result-backend"])


def test_cluster_running_and_enabled(host):
    version = cluster_version(host)
    assert version == VERSION_OF_RELEASE[host.system_info.codename]
    unit = host.service(f"postgresql@{version}-main")
    assert unit.is_running
    assert unit.is_enabled


def test_settings_from_inputs(host):
    assert admin(host, "SHOW password_encryption") == "scram-sha-256"
    assert admin(host, "SHOW max_connections") == "150"
    assert admin(host, "SHOW shared_buffers") == "64MB"
    assert admin(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


@LOGINS
def test_connections_are_logged(host, credentials):
    """log_connections: a login shows in the server's log with where it came from, its user and database."""
    user, database, password = credentials
    out = psql(host, "127.0.0.1", "SELECT 1", password=password, user=user, database=database)
    assert out.rc == 0, out.stderr
    log = host.check_output(f"tail -n 200 /var/log/postgresql/postgresql-{cluster_version(host)}-main.log")
    assert "connection received: host=127.0.0.1" in log, log[-2000:]
    assert f"connection authorized: user={user} database={database}" in log, log[-2000:]


@LOGINS
def test_each_login_owns_a_utf8_database(host, credentials):
    user, database, _unused = credentials
    row = admin(host, f"SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{database}'")
    assert row == f"{user}|UTF8"
    assert admin(host, f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{user}'") == "t"
    assert admin(host, f"SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = '{user}'") == "f"


@pytest.mark.parametrize(
    ("role", "database", "may_connect"),
    [
        ("airflow", "airflow", "t"),
        ("airflow_celery", "airflow_celery", "t"),
        ("airflow_celery", "airflow", "f"),
        ("airflow", "airflow_celery", "f"),
        ("public", "airflow", "f"),
        ("public", "airflow_celery", "f"),
    ],
)
def test_each_database_admits_only_its_owner(host, role, database, may_connect):
    """The second gate behind pg_hba: without PUBLIC's CONNECT a login reaches only its own database."""
    assert admin(host, f"SELECT has_database_privilege('{role}', '{database}', 'CONNECT')") == may_connect


@LOGINS
def test_host_in_no_client_list_is_rejected(host, credentials):
    """The other server is in neither list: both logins are rejected from there."""
    user, database, password = credentials
    out = psql(host, OTHER_SERVER[host.backend.get_hostname()], "SELECT 1", password=password, user=user, database=database)
    assert out.rc != 0
    assert "rejects connection" in out.stderr


def test_config_files_not_world_readable(host):
    version = cluster_version(host)
    for path in ("conf.d/airflow-ops.conf", "pg_hba.conf"):
        f = host.file(f"/etc/postgresql/{version}/main/{path}")
        assert f.mode == 0o640
        assert f.user == "postgres"
