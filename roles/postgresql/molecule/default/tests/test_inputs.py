"""Re-running the role on one server: growing client lists reload; bad input fails early."""

import pytest

from airflow_ops_testlib import assert_no_secret_printed, host_address, run_role
from pg import PASSWORD, RESULT_BACKEND_PASSWORD, admin

testinfra_hosts = ["ansible://pg-debian12"]

INPUTS = {
    "postgresql_airflow_password": PASSWORD,
    "postgresql_result_backend_password": RESULT_BACKEND_PASSWORD,
    "postgresql_max_connections": 150,
    "postgresql_shared_buffers": "64MB",
}
# Both passwords valid: a case then fails for the one input it gets wrong.
PASSWORDS = {
    "postgresql_airflow_password": "long-enough-Secret-1",
    "postgresql_result_backend_password": "long-enough-Secret-2",
}


def hba_databases(host, address):
    return admin(host, f"SELECT string_agg(array_to_string(database, ','), ' ') FROM pg_hba_file_rules WHERE address = '{address}'")


def test_new_clients_are_admitted_by_reload_not_restart(host):
    """Growing either client list (a new scheduler, a new worker) reloads pg_hba; the server keeps running."""
    started = admin(host, "SELECT pg_postmaster_start_time()")
    client, worker = (host_address(host, name) for name in ("pgclient-debian12", "pgclient-debian13"))
    converged = dict(INPUTS, postgresql_airflow_clients=[client], postgresql_result_backend_clients=[client, worker])
    grown = run_role("postgresql", "pg-debian12", dict(
        converged,
        postgresql_airflow_clients=[client, "192.0.2.10"],
        postgresql_result_backend_clients=[client, worker, "192.0.2.11"],
    ))
    assert grown.returncode == 0, grown.output
    # Each new address is admitted to its own list's database only.
    assert hba_databases(host, "192.0.2.10") == "airflow"
    assert hba_databases(host, "192.0.2.11") == "airflow_celery"
    restored = run_role("postgresql", "pg-debian12", converged)
    assert restored.returncode == 0, restored.output
    assert admin(host, "SELECT count(*) FROM pg_hba_file_rules WHERE address IN ('192.0.2.10', '192.0.2.11')") == "0"
    assert admin(host, "SELECT pg_postmaster_start_time()") == started


@pytest.mark.parametrize(
    ("bad_input", "expected"),
    [
        ({}, "missing required arguments: postgresql_airflow_password"),
        ({"postgresql_airflow_password": "long-enough-Secret-1"},
         "missing required arguments: postgresql_result_backend_password"),
        (dict(PASSWORDS, postgresql_airflow_password="Sh0rt!"), "postgresql_airflow_password must be at least 12 characters"),
        (dict(PASSWORDS, postgresql_result_backend_password="Sh0rt-Res!"),
         "postgresql_result_backend_password must be at least 12 characters"),
        (dict(PASSWORDS, postgresql_max_connections="many"), "postgresql_max_connections"),
        (dict(PASSWORDS, postgresql_airflow_clients=["not an address"]), "postgresql_airflow_clients="),
        (dict(PASSWORDS, postgresql_airflow_clients=["10.0.0.1/33"]), "not valid: 10.0.0.1/33"),
        (dict(PASSWORDS, postgresql_result_backend_clients=["192.0.2.300"]),
         "not valid: 192.0.2.300"),
        (dict(PASSWORDS, postgresql_result_backend_user="airflow"),
         "postgresql_result_backend_user (airflow) must differ from postgresql_airflow_user (airflow)"),
        (dict(PASSWORDS, postgresql_result_backend_database="airflow"),
         "postgresql_result_backend_database (airflow) from postgresql_airflow_database (airflow)"),
        (dict(PASSWORDS, postgresql_result_backend_user="Celery-Results"), "postgresql_result_backend_user=Celery-Results"),
        (dict(PASSWORDS, postgresql_exporter_enabled=True, postgresql_exporter_port=5432),
         "postgresql_exporter_port=5432 (1-65535, not postgresql_port 5432)"),
        (dict(PASSWORDS, postgresql_exporter_enabled=True, postgresql_airflow_user="prometheus"),
         "the login `prometheus` is the exporter's"),
    ],
)
def test_invalid_input_fails_clearly_before_any_change(bad_input, expected):
    result = run_role("postgresql", "pg-debian12", bad_input)
    assert result.returncode != 0, result.output
    # A YAML result format wraps long messages: compare with the whitespace collapsed.
    assert expected in " ".join(result.output.split()), result.output
    assert result.changed == 0, result.output
    assert_no_secret_printed(bad_input, result.output)

