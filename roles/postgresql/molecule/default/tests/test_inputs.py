"""Re-running the role on one server: a growing client list reloads; bad input fails early."""

import pytest

from airflow_ops_testlib import assert_no_secret_printed, run_role
from pg import PASSWORD, admin

testinfra_hosts = ["ansible://pg-debian12"]

INPUTS = {
    "postgresql_airflow_password": PASSWORD,
    "postgresql_max_connections": 150,
    "postgresql_shared_buffers": "64MB",
}


def test_new_client_is_admitted_by_reload_not_restart(host):
    """Growing the client list (a new worker) reloads pg_hba; the server keeps running."""
    started = admin(host, "SELECT pg_postmaster_start_time()")
    client = host.check_output("getent hosts pgclient-debian12 | cut -d' ' -f1")
    grown = run_role("postgresql", "pg-debian12", dict(INPUTS, postgresql_airflow_clients=[client, "192.0.2.10"]))
    assert grown.returncode == 0, grown.output
    assert admin(host, "SELECT count(*) FROM pg_hba_file_rules WHERE '192.0.2.10' = ANY(ARRAY[address])") == "1"
    restored = run_role("postgresql", "pg-debian12", dict(INPUTS, postgresql_airflow_clients=[client]))
    assert restored.returncode == 0, restored.output
    assert admin(host, "SELECT pg_postmaster_start_time()") == started


@pytest.mark.parametrize(
    ("bad_input", "expected"),
    [
        ({}, "missing required arguments: postgresql_airflow_password"),
        ({"postgresql_airflow_password": "Sh0rt!"}, "postgresql_airflow_password must be at least 12 characters"),
        ({"postgresql_airflow_password": "long-enough-Secret-1", "postgresql_max_connections": "many"}, "postgresql_max_connections"),
        ({"postgresql_airflow_password": "long-enough-Secret-1", "postgresql_airflow_clients": ["not an address"]},
         "postgresql_airflow_clients="),
        ({"postgresql_airflow_password": "long-enough-Secret-1", "postgresql_airflow_clients": ["10.0.0.1/33"]},
         "not valid: 10.0.0.1/33"),
    ],
)
def test_invalid_input_fails_clearly_before_any_change(bad_input, expected):
    result = run_role("postgresql", "pg-debian12", bad_input)
    assert result.returncode != 0, result.output
    assert expected in result.output
    assert result.changed == 0, result.output
    assert_no_secret_printed(bad_input, result.output)
