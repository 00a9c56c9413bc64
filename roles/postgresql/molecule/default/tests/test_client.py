"""The clients: each login gets in from its listed clients to its own database; nothing else.

Each client is the control plane of its own distribution's server (in both client lists there)
and a worker of the other server (in that server's postgresql_result_backend_clients only).
"""

import pytest

from pg import METADATA, RESULT_BACKEND, psql

testinfra_hosts = ["ansible://clients"]

CONTROL_PLANE_OF = {"pgclient-debian12": "pg-debian12", "pgclient-debian13": "pg-debian13"}
WORKER_OF = {"pgclient-debian12": "pg-debian13", "pgclient-debian13": "pg-debian12"}

CREATE_AND_READ = ("CREATE TABLE IF NOT EXISTS molecule_probe (id int); INSERT INTO molecule_probe VALUES (1); "
                   "SELECT count(*) > 0 FROM molecule_probe")


def login(host, server, sql, user, database, password):
    return psql(host, server, sql, password=password, user=user, database=database)


def test_metadata_login_logs_in_and_creates_a_table(host):
    out = login(host, CONTROL_PLANE_OF[host.backend.get_hostname()], CREATE_AND_READ, *METADATA)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip().endswith("t")


@pytest.mark.parametrize("server_of", [CONTROL_PLANE_OF, WORKER_OF], ids=["control-plane", "worker"])
def test_result_backend_login_logs_in_and_creates_a_table(host, server_of):
    out = login(host, server_of[host.backend.get_hostname()], CREATE_AND_READ, *RESULT_BACKEND)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip().endswith("t")


@pytest.mark.parametrize("credentials", [METADATA, RESULT_BACKEND], ids=["metadata", "result-backend"])
def test_wrong_password_is_rejected(host, credentials):
    user, database, _unused = credentials
    out = login(host, CONTROL_PLANE_OF[host.backend.get_hostname()], "SELECT 1", user, database, "not-the-password")
    assert out.rc != 0
    assert "password authentication failed" in out.stderr


def test_worker_cannot_log_in_to_the_metadata(host):
    """A host listed only for the result backend, with the right metadata password: rejected."""
    out = login(host, WORKER_OF[host.backend.get_hostname()], "SELECT 1", *METADATA)
    assert out.rc != 0
    assert "rejects connection" in out.stderr


@pytest.mark.parametrize("server_of", [CONTROL_PLANE_OF, WORKER_OF], ids=["control-plane", "worker"])
def test_result_backend_login_is_rejected_on_the_metadata_database(host, server_of):
    user, _unused, password = RESULT_BACKEND
    out = login(host, server_of[host.backend.get_hostname()], "SELECT 1", user, METADATA[1], password)
    assert out.rc != 0
    assert "rejects connection" in out.stderr


def test_metadata_login_is_rejected_on_the_result_backend_database(host):
    user, _unused, password = METADATA
    out = login(host, CONTROL_PLANE_OF[host.backend.get_hostname()], "SELECT 1", user, RESULT_BACKEND[1], password)
    assert out.rc != 0
    assert "rejects connection" in out.stderr


def test_other_roles_cannot_log_in_remotely(host):
    out = psql(host, CONTROL_PLANE_OF[host.backend.get_hostname()], "SELECT 1", user="postgres")
    assert out.rc != 0
    assert "rejects connection" in out.stderr
