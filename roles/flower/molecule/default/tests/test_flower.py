"""The flower role alone (no worker, scheduler or database on the host): Flower runs as the airflow
user, answers on flower_port only with one of its logins, is connected to the broker and does not
show the broker's password. Asked from the controller over the scenario's network; observes only."""

import pytest

from airflow_ops_testlib import (airflow_component_units, assert_airflow_unit_runs_hardened, container_ip, http, listening, redis_acl,
                                 wait_for)

LOGINS = [("ops", "molecule-Flower-Secret-1"), ("audit", "molecule-Audit-Secret-2")]
# Flower's broker login (molecule.yml): the `flower` user, its password derived from redis_password.
BROKER_PASSWORD = redis_acl.user_password("molecule-broker-Secret-1", "flower")
PORT = 5566


@pytest.fixture(scope="module")
def flower(host):
    url = f"http://{container_ip(host.backend.get_hostname())}:{PORT}"
    wait_for("Flower", lambda: http("GET", f"{url}/healthcheck", basic=LOGINS[0])[0] == 200, timeout=120)
    return url


def test_flower_runs_as_an_enabled_unit_of_the_airflow_user(host):
    assert_airflow_unit_runs_hardened(host, "airflow-flower")


def test_only_flower_is_installed(host):
    components = airflow_component_units(host)
    assert components == ["airflow-flower.service"], components


def test_flower_listens_on_flower_port(host):
    assert [address.rsplit(":", 1)[1] for address in listening(host, PORT)] == [str(PORT)]


@pytest.mark.parametrize("login", LOGINS, ids=[user for user, _unused in LOGINS])
def test_each_login_opens_flower(flower, login):
    status, body = http("GET", f"{flower}/api/workers", basic=login)
    assert status == 200, body


@pytest.mark.parametrize("login", [None, ("ops", "molecule-Audit-Secret-2"), ("admin", "molecule-Flower-Secret-1")],
                         ids=["none", "other-users-password", "unknown-user"])
def test_a_wrong_login_is_refused(flower, login):
    for path in ("/", "/api/workers", "/broker", "/metrics"):
        status, _unused = http("GET", flower + path, basic=login)
        assert status == 401, (path, login)


def test_flower_reads_the_broker_without_showing_its_password(flower):
    """Flower's broker page reads Redis (a broker it cannot reach fails the page); the URL it shows
    hides the password."""
    status, body = http("GET", f"{flower}/broker", basic=LOGINS[0])
    assert status == 200, body
    assert "redis://" in body and BROKER_PASSWORD not in body
