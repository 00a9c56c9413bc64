"""Behaviour of the broker: it answers with its password only, keeps messages, never evicts."""

import pytest

from airflow_ops_testlib import host_address

PASSWORD = "molecule-broker-Secret-1"


def cli(host, *args, password=PASSWORD, target="127.0.0.1"):
    auth = f"REDISCLI_AUTH='{password}' " if password else ""
    return host.run(f"{auth}redis-cli --no-auth-warning -h {target} {' '.join(args)}")


def wait_for_pong(host):
    for _ in range(30):
        if cli(host, "ping").stdout.strip() == "PONG":
            return
        host.run("sleep 1")
    pytest.fail("redis-server did not come back")


def test_service_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_ping_with_password_answers_pong(host):
    assert cli(host, "ping").stdout.strip() == "PONG"


def test_ping_without_password_is_refused(host):
    out = cli(host, "ping", password=None)
    assert "NOAUTH" in out.stdout + out.stderr


def test_wrong_password_is_refused(host):
    out = cli(host, "ping", password="not-the-password")
    assert "PONG" not in out.stdout
    assert "WRONGPASS" in out.stdout + out.stderr or "invalid" in (out.stdout + out.stderr).lower()


def test_peer_reaches_broker_on_primary_address(host):
    """The other broker host reaches this one over the network, with the password."""
    me = host.backend.get_hostname()
    peer = "redis-debian13" if me == "redis-debian12" else "redis-debian12"
    address = host_address(host, peer)
    assert cli(host, "ping", target=address).stdout.strip() == "PONG"


def test_broker_never_evicts(host):
    assert cli(host, "config", "get", "maxmemory-policy").stdout.split() == ["maxmemory-policy", "noeviction"]
    assert cli(host, "config", "get", "maxmemory").stdout.split() == ["maxmemory", str(256 * 1024 * 1024)]


def test_key_survives_restart(host):
    assert cli(host, "set", "molecule:restart", "kept").stdout.strip() == "OK"
    host.run_expect([0], "systemctl restart redis-server")
    wait_for_pong(host)
    assert cli(host, "get", "molecule:restart").stdout.strip() == "kept"


def test_key_survives_crash_through_aof(host):
    """SIGKILL skips the RDB save on shutdown: only the append-only file can bring the key back."""
    assert cli(host, "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    assert cli(host, "config", "get", "appendfsync").stdout.split() == ["appendfsync", "everysec"]
    assert cli(host, "set", "molecule:crash", "kept").stdout.strip() == "OK"
    host.run("sleep 2")  # appendfsync everysec
    host.run_expect([0], "systemctl kill --signal=SIGKILL redis-server")
    host.run_expect([0], "systemctl restart redis-server")
    wait_for_pong(host)
    assert cli(host, "get", "molecule:crash").stdout.strip() == "kept"


def test_secret_config_is_not_world_readable(host):
    conf = host.file("/etc/redis/conf.d/airflow-ops.conf")
    assert conf.user == "root"
    assert conf.group == "redis"
    assert conf.mode == 0o640


def test_overcommit_persisted(host):
    content = host.file("/etc/sysctl.d/60-redis.conf").content_string
    assert "vm.overcommit_memory=1" in content.replace(" ", "").splitlines()
