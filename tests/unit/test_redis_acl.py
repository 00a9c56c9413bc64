"""The broker's users (plugins/plugin_utils/redis_acl.py and the filters of plugins/filter/redis_acl.py):
who logs in as whom, what each may run on each Redis version, what the ACL file says. Pure Python."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))

import redis_acl  # noqa: E402

spec = importlib.util.spec_from_file_location("redis_acl_filters", ROOT / "plugins/filter/redis_acl.py")
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)

PASSWORD = "unit-broker-Secret-1"
BOOKWORM, TRIXIE, JAMMY = (7, 0), (8, 0), (6, 0)
# What task code on a worker must not run (the list and a few more of the same kind).
DANGEROUS = ["config", "config|get", "config|set", "module", "module|load", "flushall", "flushdb", "replicaof",
             "slaveof", "debug", "shutdown", "acl", "acl|setuser", "monitor", "client|kill", "client|list", "keys",
             "scan", "save", "bgsave", "bgrewriteaof", "migrate", "restore", "failover", "script|kill", "script|flush",
             "function", "sync", "psync", "@all", "@admin", "@dangerous"]


def rules(text: str) -> dict[str, list[str]]:
    """user -> its rule tokens, from an ACL file's text."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        assert words[0] == "user", line
        out[words[1]] = words[2:]
    return out


def test_admin_logs_in_with_redis_password_the_others_with_derived_ones():
    assert redis_acl.user_password(PASSWORD, "admin") == PASSWORD
    derived = {user: redis_acl.user_password(PASSWORD, user) for user in ("scheduler", "worker", "flower", "exporter")}
    assert len(set(derived.values())) == 4
    for password in derived.values():
        assert len(password) == 64 and PASSWORD not in password
    # The same on every run and controller; another redis_password gives others.
    assert derived["worker"] == redis_acl.user_password(PASSWORD, "worker")
    assert redis_acl.user_password(PASSWORD + "x", "worker") != derived["worker"]


def test_no_user_no_password_and_an_unknown_user_is_refused():
    assert redis_acl.user_password(PASSWORD, "") == ""
    with pytest.raises(ValueError, match="'root' is not a broker user"):
        redis_acl.user_password(PASSWORD, "root")


@pytest.mark.parametrize("components, user", [
    (["api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"], "scheduler"),
    (["worker", "flower"], "worker"),
    (["worker"], "worker"),
    (["flower"], "flower"),
    (["api-server"], ""),
    (["dag-processor", "triggerer"], ""),
])
def test_each_host_logs_in_as_the_user_of_its_components(components, user):
    assert redis_acl.broker_user(components) == user


@pytest.mark.parametrize("package, version", [
    ("5:7.0.15-1~deb12u1", (7, 0)), ("5:8.0.2-3", (8, 0)), ("5:6.0.16-1ubuntu1", (6, 0)), ("7.2.4", (7, 2)),
])
def test_the_redis_version_comes_from_the_package_version(package, version):
    assert redis_acl.redis_version(package) == version


@pytest.mark.parametrize("package", [None, "", "unknown"])
def test_a_package_version_without_a_number_is_an_error(package):
    with pytest.raises(ValueError, match="cannot read a Redis version"):
        redis_acl.redis_version(package)


@pytest.mark.parametrize("version", [JAMMY, BOOKWORM, (7, 2), TRIXIE])
@pytest.mark.parametrize("user", ["scheduler", "worker", "flower", "exporter"])
def test_no_client_user_gets_a_dangerous_command(user, version):
    allowed = redis_acl.commands(user, version)
    # The exporter reads the server's settings (CONFIG GET) for its figures; it changes none.
    assert set(allowed) & set(DANGEROUS) == ({"config|get"} if user == "exporter" else set())
    # Whole commands with subcommands are never granted, only named subcommands.
    assert not {"client", "script", "config", "latency", "slowlog"} & set(allowed)


def test_the_celery_users_run_what_kombu_and_redis_py_send():
    """The commands of a MONITOR trace of a worker, a producer, inspect/control calls, an event
    receiver and Flower's queue lengths (kombu 5.7, redis-py 8), and those kombu's scripts call."""
    traced = {"llen", "multi", "exec", "brpop", "del", "publish", "ping", "evalsha", "sadd", "hello", "time",
              "zadd", "srem", "lpush", "script|exists", "script|load", "smembers", "zrangebyscore", "hset", "zrem",
              "psubscribe", "hdel", "zrange", "set", "get", "punsubscribe", "exists", "hget", "rpop", "pexpire"}
    # kombu 5.6 (the Airflow 3.3.1 lock) restores unacked messages with ZREVRANGEBYSCORE.
    traced.add("zrevrangebyscore")
    for user in redis_acl.CELERY_USERS:
        assert traced <= set(redis_acl.commands(user, BOOKWORM))


def test_newer_commands_only_where_redis_has_them():
    """An ACL rule naming a command the server does not know is refused: CLIENT SETINFO (which
    redis-py sends from 7.2 on) and LATENCY HISTOGRAM only where they exist."""
    assert "client|setinfo" not in redis_acl.commands("worker", BOOKWORM)
    assert "client|setinfo" in redis_acl.commands("worker", (7, 2))
    assert "latency|histogram" not in redis_acl.commands("exporter", JAMMY)
    assert "latency|histogram" in redis_acl.commands("exporter", BOOKWORM)


def test_the_acl_file_turns_default_off_and_holds_hashes_only():
    text = redis_acl.acl_file(PASSWORD, BOOKWORM)
    users = rules(text)
    assert list(users) == ["default", "admin", "scheduler", "worker", "flower", "exporter"]
    assert users["default"][:2] == ["off", "resetpass"] and not [t for t in users["default"] if t.startswith(("#", ">", "nopass"))]
    assert PASSWORD not in text
    for user, tokens in users.items():
        if user != "default":
            assert tokens[0] == "on"
            assert tokens[1] == "#" + hashlib.sha256(redis_acl.user_password(PASSWORD, user).encode()).hexdigest()
    assert users["admin"][2:] == ["~*", "&*", "+@all"]


def test_default_is_off_without_a_password_and_keeps_its_rules_for_the_aof_replay():
    """Redis replays MULTI blocks of the append-only file as `default` and, before 8.4, checks them
    against its rules (redis/redis#14541): off, no password, every key and command."""
    for version, tail in ((JAMMY, ["~*", "+@all"]), (BOOKWORM, ["~*", "&*", "+@all"]), (TRIXIE, ["~*", "&*", "+@all"])):
        assert rules(redis_acl.acl_file(PASSWORD, version))["default"] == ["off", "resetpass"] + tail


def test_celery_users_get_every_channel_the_exporter_no_key_and_no_channel():
    """Redis 7 gives a new user no channel (acl-pubsub-default): Celery's events and remote control
    are pub/sub. Redis 6.0 has no channel rules at all: none is written there."""
    for version in (BOOKWORM, TRIXIE):
        users = rules(redis_acl.acl_file(PASSWORD, version))
        for user in redis_acl.CELERY_USERS:
            assert "~*" in users[user] and "&*" in users[user]
        assert "resetchannels" in users["exporter"]
        assert not [token for token in users["exporter"] if token.startswith(("~", "%", "&", "allkeys"))]
    old = redis_acl.acl_file(PASSWORD, JAMMY)
    assert "&" not in old and "channels" not in old


def test_while_clients_move_default_keeps_the_password_and_every_command():
    users = rules(redis_acl.acl_file(PASSWORD, BOOKWORM, default_user_on=True))
    assert users["default"] == ["on", "#" + hashlib.sha256(PASSWORD.encode()).hexdigest(), "~*", "&*", "+@all"]


def test_the_filters_give_the_same_and_name_a_bad_user():
    assert filters.redis_user_password(PASSWORD, "worker") == redis_acl.user_password(PASSWORD, "worker")
    assert filters.redis_user_password(PASSWORD, None) == ""
    assert filters.redis_acl_file(PASSWORD, "5:7.0.15-1~deb12u1") == redis_acl.acl_file(PASSWORD, BOOKWORM)
    with pytest.raises(AnsibleFilterError, match="redis_user_password: 'guest' is not a broker user"):
        filters.redis_user_password(PASSWORD, "guest")
    with pytest.raises(AnsibleFilterError, match="redis_acl_file: cannot read a Redis version from None"):
        filters.redis_acl_file(PASSWORD, None)


@pytest.mark.parametrize("moving, settings, acl, on", [
    (True, 'bind 10.0.0.1\nrequirepass "old-Secret-123"\n', None, True),     # set up before ACL users
    (True, "bind 10.0.0.1\naclfile /etc/redis/users.acl\n", "user default on #ab ~* &* +@all\n", True),  # a run stopped halfway
    (True, "bind 10.0.0.1\naclfile /etc/redis/users.acl\n", "user default off resetpass resetkeys -@all\n", False),
    (True, None, None, False),                                               # a new broker
    (False, 'requirepass "old-Secret-123"\n', "user default on #ab ~* +@all\n", False),  # site.yml's last play
    (True, "# no requirepass here\naclfile x\n", None, False),               # a comment is not a setting
])
def test_default_stays_on_only_while_clients_of_an_older_broker_move(moving, settings, acl, on):
    assert redis_acl.default_user_on(moving, settings, acl) is on
    assert filters.redis_default_user_on(moving, settings, acl) is on


def test_replication_users_only_with_sentinel_and_only_what_replication_needs():
    assert "replica" not in rules(redis_acl.acl_file(PASSWORD, BOOKWORM))
    for version in (BOOKWORM, TRIXIE):
        users = rules(redis_acl.acl_file(PASSWORD, version, replicated=True))
        assert list(users)[-2:] == ["replica", "sentinel"]
        assert users["replica"][2:] == ["resetchannels", "+psync", "+replconf", "+ping"]
        # no key; Sentinel's hello channel only; no ACL, CONFIG SET, FLUSHALL, DEBUG, SHUTDOWN, FAILOVER
        assert not [t for t in users["sentinel"] if t.startswith(("~", "allkeys"))]
        assert "&__sentinel__:hello" in users["sentinel"]
        for command in ("acl", "config|set", "config|get", "flushall", "debug", "shutdown", "failover", "@all", "keys"):
            assert f"+{command}" not in users["sentinel"] + users["replica"]
        assert {"+replicaof", "+config|rewrite", "+client|kill", "+info", "+role"} <= set(users["sentinel"])
    assert redis_acl.user_password(PASSWORD, "replica") != redis_acl.user_password(PASSWORD, "sentinel")


def test_sentinel_clients_may_only_look_the_primary_up():
    for version, setinfo in ((BOOKWORM, False), (TRIXIE, True)):
        text = redis_acl.sentinel_acl_file(PASSWORD, version)
        users = rules(text)
        assert list(users) == ["default", "admin", "scheduler", "worker", "flower"]
        assert users["default"][:2] == ["off", "resetpass"] and "-@all" in users["default"]
        assert PASSWORD not in text
        for user in redis_acl.CELERY_USERS:
            tokens = users[user]
            assert tokens[1] == "#" + hashlib.sha256(redis_acl.user_password(PASSWORD, user).encode()).hexdigest()
            allowed = {t[1:] for t in tokens if t.startswith("+")}
            assert "sentinel|get-master-addr-by-name" in allowed and "sentinel|masters" in allowed
            assert not allowed & {"sentinel|set", "sentinel|failover", "sentinel|remove", "sentinel|monitor", "sentinel|reset",
                                  "sentinel|config", "sentinel|debug", "sentinel", "acl", "shutdown", "@all"}
            assert ("client|setinfo" in allowed) is setinfo
    assert filters.redis_sentinel_acl_file(PASSWORD, "5:8.0.2-3") == redis_acl.sentinel_acl_file(PASSWORD, TRIXIE)
    assert filters.redis_acl_file(PASSWORD, "5:8.0.2-3", False, True) == redis_acl.acl_file(PASSWORD, TRIXIE, False, True)
