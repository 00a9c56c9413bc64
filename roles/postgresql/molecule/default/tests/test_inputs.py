"""Re-running the role on one server: growing client lists reload (side_effect.yml did it; this
observes); bad input fails early."""

import json

import pytest

from airflow_ops_testlib import assert_case_refused, run_role_cases
from pg import admin

HOST = "pg-debian12"
testinfra_hosts = [f"ansible://{HOST}"]

# Both passwords valid: a case then fails for the one input it gets wrong.
PASSWORDS = {
    "postgresql_airflow_password": "long-enough-Secret-1",
    "postgresql_result_backend_password": "long-enough-Secret-2",
}


def test_new_clients_are_admitted_by_reload_not_restart(host):
    """side_effect.yml grew either client list (a new scheduler, a new worker) and shrank it back:
    each new address was admitted to its own list's database only, then to nothing, and the server
    kept running throughout (pg_hba reloaded, no restart)."""
    record = json.loads(host.file("/var/tmp/molecule-side-effect.json").content_string)
    assert record["grown"] == "192.0.2.10=airflow 192.0.2.11=airflow_celery", record
    assert record["restored"] == "", record
    assert record["started_before"] and record["started_after"] == record["started_before"], record
    assert admin(host, "SELECT pg_postmaster_start_time()") == record["started_before"]


CASES = {
    "no-passwords": ({}, "missing required arguments: postgresql_airflow_password"),
    "no-result-backend-password": ({"postgresql_airflow_password": "long-enough-Secret-1"},
                                   "missing required arguments: postgresql_result_backend_password"),
    "short-airflow-password": (dict(PASSWORDS, postgresql_airflow_password="Sh0rt!"), "postgresql_airflow_password must be at least 12 characters"),
    "short-result-backend-password": (dict(PASSWORDS, postgresql_result_backend_password="Sh0rt-Res!"),
                                      "postgresql_result_backend_password must be at least 12 characters"),
    "max-connections-not-a-number": (dict(PASSWORDS, postgresql_max_connections="many"), "postgresql_max_connections"),
    "airflow-client-not-an-address": (dict(PASSWORDS, postgresql_airflow_clients=["not an address"]), "postgresql_airflow_clients="),
    "airflow-client-bad-prefix": (dict(PASSWORDS, postgresql_airflow_clients=["10.0.0.1/33"]), "not valid: 10.0.0.1/33"),
    "result-backend-client-bad-address": (dict(PASSWORDS, postgresql_result_backend_clients=["192.0.2.300"]),
                                          "not valid: 192.0.2.300"),
    "same-users": (dict(PASSWORDS, postgresql_result_backend_user="airflow"),
                   "postgresql_result_backend_user (airflow) must differ from postgresql_airflow_user (airflow)"),
    "same-databases": (dict(PASSWORDS, postgresql_result_backend_database="airflow"),
                       "postgresql_result_backend_database (airflow) from postgresql_airflow_database (airflow)"),
    "uppercase-user": (dict(PASSWORDS, postgresql_result_backend_user="Celery-Results"), "postgresql_result_backend_user=Celery-Results"),
    "exporter-port-clash": (dict(PASSWORDS, postgresql_exporter_enabled=True, postgresql_exporter_port=5432),
                            "postgresql_exporter_port=5432 (1-65535, not postgresql_port 5432)"),
    "exporter-login-taken": (dict(PASSWORDS, postgresql_exporter_enabled=True, postgresql_airflow_user="prometheus"),
                             "the login `prometheus` is the exporter's"),
}


@pytest.fixture(scope="module")
def refused():
    """Every case a host of its own in one run of the role (run_role_cases)."""
    return run_role_cases("postgresql", HOST, {case: inputs for case, (inputs, _unused) in CASES.items()})


@pytest.mark.parametrize("case", CASES)
def test_invalid_input_fails_clearly_before_any_change(refused, case):
    inputs, expected = CASES[case]
    assert_case_refused(refused, HOST, case, inputs, expected)
