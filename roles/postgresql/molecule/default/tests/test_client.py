"""The clients: Airflow logs in from its own client with its password; nothing else gets in."""

from pg import PASSWORD, psql

testinfra_hosts = ["ansible://clients"]

SERVER_OF = {"pgclient-debian12": "pg-debian12", "pgclient-debian13": "pg-debian13"}
OTHER_SERVER_OF = {"pgclient-debian12": "pg-debian13", "pgclient-debian13": "pg-debian12"}


def test_client_logs_in_over_tcp_and_creates_a_table(host):
    server = SERVER_OF[host.backend.get_hostname()]
    out = psql(host, server, "CREATE TABLE IF NOT EXISTS molecule_probe (id int); INSERT INTO molecule_probe VALUES (1); "
               "SELECT count(*) > 0 FROM molecule_probe")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip().endswith("t")


def test_wrong_password_is_rejected(host):
    out = psql(host, SERVER_OF[host.backend.get_hostname()], "SELECT 1", password="not-the-password")
    assert out.rc != 0
    assert "password authentication failed" in out.stderr


def test_address_not_in_the_list_is_rejected(host):
    out = psql(host, OTHER_SERVER_OF[host.backend.get_hostname()], "SELECT 1", password=PASSWORD)
    assert out.rc != 0
    assert "rejects connection" in out.stderr


def test_other_roles_cannot_log_in_remotely(host):
    out = psql(host, SERVER_OF[host.backend.get_hostname()], "SELECT 1", user="postgres")
    assert out.rc != 0
    assert "rejects connection" in out.stderr
