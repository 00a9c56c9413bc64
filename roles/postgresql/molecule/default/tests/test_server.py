"""The servers: version from the distribution, settings from inputs, a database Airflow owns."""

from pg import admin, cluster_version

testinfra_hosts = ["ansible://postgresql"]


# What each distribution ships (the role reads it; nothing is hard-coded there).
VERSION_OF_RELEASE = {"bookworm": "15", "trixie": "17", "jammy": "14", "noble": "16"}


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


def test_airflow_owns_a_utf8_database(host):
    row = admin(host, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'airflow'")
    assert row == "airflow|UTF8"
    assert admin(host, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'airflow'") == "t"


def test_config_files_not_world_readable(host):
    version = cluster_version(host)
    for path in ("conf.d/airflow-ops.conf", "pg_hba.conf"):
        f = host.file(f"/etc/postgresql/{version}/main/{path}")
        assert f.mode == 0o640
        assert f.user == "postgres"
