"""Behaviour of the broker: it answers its users only, keeps messages, never evicts.
side_effect.yml restarted and killed it first; these tests only observe."""

import json

from airflow_ops_testlib import host_address

PASSWORD = "molecule-broker-Secret-1"


def cli(host, *args, password=PASSWORD, target="127.0.0.1", user="admin"):
    """redis-cli as `user` (admin: redis_password); password None: no login."""
    auth = f"REDISCLI_AUTH='{password}' " if password else ""
    login = f"--user {user} " if password and user else ""
    return host.run(f"{auth}redis-cli --no-auth-warning {login}-h {target} {' '.join(args)}")


def test_service_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_ping_with_password_answers_pong(host):
    assert cli(host, "ping").stdout.strip() == "PONG"


def test_ping_without_password_is_refused(host):
    out = cli(host, "ping", password=None)
    assert "NOAUTH" in out.stdout + out.stderr


def test_the_password_alone_is_refused(host):
    """`default`, the user a password alone logs in as, is off: redis_password works for admin only."""
    out = cli(host, "ping", user=None)
    assert "PONG" not in out.stdout
    assert "WRONGPASS" in out.stdout + out.stderr


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


def side_effect(host):
    """The run ids side_effect.yml recorded: before, after its restart, after its kill -9."""
    return json.loads(host.file("/var/tmp/molecule-side-effect.json").content_string)


def test_key_survives_restart(host):
    """side_effect wrote molecule:restart, then restarted the server (a new run id)."""
    ids = side_effect(host)
    assert ids["before"] and ids["restarted"] and ids["restarted"] != ids["before"], ids
    assert cli(host, "get", "molecule:restart").stdout.strip() == "kept"


def test_key_survives_crash_through_aof(host):
    """side_effect wrote molecule:crash, waited a second fsync, then SIGKILL (which skips the RDB save
    on shutdown) and a start: only the append-only file can have brought the key back."""
    assert cli(host, "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    assert cli(host, "config", "get", "appendfsync").stdout.split() == ["appendfsync", "everysec"]
    ids = side_effect(host)
    assert ids["crashed"] and ids["crashed"] != ids["restarted"], ids
    assert cli(host, "get", "molecule:crash").stdout.strip() == "kept"


def test_a_transaction_survives_crash_through_aof(host):
    """Redis replays MULTI blocks of the append-only file as `default`, which is off: they must be
    replayed all the same (redis/redis#14541; redis_acl.default_rule)."""
    for key in ("molecule:crash:multi", "molecule:crash:multi2"):
        assert cli(host, "get", key).stdout.strip() == "kept", key


def test_secret_config_is_not_world_readable(host):
    for path in ("/etc/redis/conf.d/airflow-ops.conf", "/etc/redis/users.acl"):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "redis", 0o640), path
    # The users file holds their passwords' hashes, not the passwords.
    assert PASSWORD not in host.file("/etc/redis/users.acl").content_string


def test_overcommit_persisted(host):
    content = host.file("/etc/sysctl.d/60-redis.conf").content_string
    assert "vm.overcommit_memory=1" in content.replace(" ", "").splitlines()
