# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The broker's Redis users: who logs in as whom, with which commands, keys and channels. One place
for every rule; the redis role writes `acl_file()` as Redis's ACL file, site.yml gives each Airflow
host `broker_user()` and its `user_password()`.

Users:
- `admin`: every command; password `redis_password` itself. For operators and the role's own
  checks; held by the broker host (and the controller's vault) alone.
- `scheduler`, `worker`, `flower`: the Celery clients. Each logs in with its own password, derived
  from `redis_password` (HMAC-SHA256, one-way: a worker's password does not give the scheduler's or
  the admin's). They send the same commands (workers publish events and control replies, Flower
  and the scheduler's drain call inspect and control workers), so they share one command list:
  what kombu's Redis transport, its Lua scripts and redis-py send, taken from a MONITOR trace of
  workers, producers, inspect/control calls, an event receiver and Flower's queue lengths (kombu
  5.7, redis-py 8), and from the source of every kombu a shipped lock pins (5.6 and 5.7). Keys:
  all (the broker holds only Celery's keys); channels: all (events and remote control are pub/sub).
- `exporter`: prometheus-redis-exporter: server statistics, no key and no channel.
- With three or more broker hosts (Redis Sentinel), two more, in Redis's file only: `replica`, what a
  replica sends its primary (PSYNC, REPLCONF, PING), and `sentinel`, what Redis Sentinel sends the
  instances it watches and reconfigures (INFO, ROLE, REPLICAOF, CONFIG REWRITE, CLIENT KILL, its
  hello channel). Both are held by the broker hosts alone.
- Sentinel's own users (`sentinel_acl_file()`): `admin` (every command; the Sentinels log in to each
  other as it) and the Celery users with the same passwords, which may only ask where the primary
  is (SENTINEL MASTERS, GET-MASTER-ADDR-BY-NAME, ...): a worker cannot start a failover, change or
  remove the monitored primary, or read Sentinel's settings.
- `default` (a client that sends a password alone): off, without a password (see default_rule for
  why its rules stay open). On only while an existing cluster's clients move from `redis_password`
  to their users (site.yml turns it off at the end of that run).

What a Celery user cannot do: CONFIG, MODULE, FLUSHALL/FLUSHDB, REPLICAOF/SLAVEOF, DEBUG, SHUTDOWN,
ACL, MONITOR, CLIENT KILL, KEYS, SCAN, SAVE, ... (every command not listed). What it still can,
with the queue keys, is the residual risk docs/security.md states.
"""

from __future__ import annotations

import hashlib
import hmac
import re

ADMIN = "admin"
CELERY_USERS = ("scheduler", "worker", "flower")
EXPORTER = "exporter"
USERS = (ADMIN,) + CELERY_USERS + (EXPORTER,)
REPLICA = "replica"
SENTINEL = "sentinel"
REPLICATION_USERS = (REPLICA, SENTINEL)

# Commands (and subcommands) of the Celery users. Scripts (EVALSHA) run with the caller's rights:
# the commands they call are listed too (TIME, ZRANGEBYSCORE, EXISTS, ... in kombu's binding sweep,
# GET/DEL in redis-py's lock release).
CELERY_COMMANDS = (
    "ping", "hello", "select",
    "multi", "exec", "discard", "watch", "unwatch",
    "brpop", "rpop", "lpush", "rpush", "llen", "del", "exists", "pexpire",
    "get", "set",
    "hset", "hget", "hdel", "hlen",
    "sadd", "srem", "smembers",
    "zadd", "zrem", "zrange", "zrangebyscore",
    "zrevrangebyscore",  # kombu 5.6 (the Airflow 3.3.1 lock) restores unacked messages with it
    "publish", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
    "time", "eval", "evalsha", "script|load", "script|exists",
)
# prometheus-redis-exporter: what its scrape sends (INFO ALL, CONFIG GET *, SLOWLOG, LATENCY, ...).
EXPORTER_COMMANDS = (
    "ping", "hello", "select", "info", "config|get", "client|setname",
    "slowlog|get", "slowlog|len", "latency|latest",
)
# A replica's link to its primary, and Redis Sentinel's calls to the instances it watches (the list in
# Redis's Sentinel documentation, "Redis Sentinel and ACL").
REPLICA_COMMANDS = ("psync", "replconf", "ping")
SENTINEL_COMMANDS = ("multi", "exec", "slaveof", "replicaof", "ping", "info", "role", "subscribe", "publish",
                     "config|rewrite", "client|setname", "client|kill", "script|kill")
# What a Celery client may ask Sentinel: redis-py's Sentinel client looks the primary up with SENTINEL
# MASTERS (checking its flags) and the replicas with SENTINEL REPLICAS/SLAVES.
SENTINEL_CLIENT_COMMANDS = ("ping", "hello", "sentinel|masters", "sentinel|master", "sentinel|get-master-addr-by-name",
                            "sentinel|replicas", "sentinel|slaves", "sentinel|sentinels")
# Commands that exist only from a Redis version on: an ACL rule naming an unknown command is refused.
SINCE = {
    "client|setinfo": (7, 2),   # redis-py sends it on connect from Redis 7.2 on
    "latency|histogram": (7, 0),
}
NEWER_CELERY_COMMANDS = ("client|setinfo",)
NEWER_SENTINEL_CLIENT_COMMANDS = ("client|setinfo",)
NEWER_EXPORTER_COMMANDS = ("client|setinfo", "latency|histogram")
# Pub/sub channel rules (&pattern) exist from Redis 6.2; Redis 7 gives new users no channel.
CHANNEL_RULES = (6, 2)

PASSWORD_CONTEXT = b"airflow_ops.celery redis user "


def user_password(redis_password: str, user: str) -> str:
    """The password of a broker user: `redis_password` for `admin`, otherwise derived from it (64 hex
    characters); "" for no user (a host without a broker client)."""
    if not user:
        return ""
    if user == ADMIN:
        return redis_password
    if user not in USERS + REPLICATION_USERS:
        raise ValueError(f"{user!r} is not a broker user; the users are {', '.join(USERS + REPLICATION_USERS)}")
    return hmac.new(redis_password.encode(), PASSWORD_CONTEXT + user.encode(), hashlib.sha256).hexdigest()


def broker_user(components: list[str]) -> str:
    """The user an Airflow host's airflow.cfg logs in to the broker as: one per host, that of its
    component with the most to do (a scheduler also consumes nothing, but the user lists are the same)."""
    for component, user in (("scheduler", "scheduler"), ("worker", "worker"), ("flower", "flower")):
        if component in components:
            return user
    return ""


def redis_version(package_version: str | None) -> tuple[int, int]:
    """(major, minor) of a Debian package version of redis-server, e.g. 5:7.0.15-1~deb12u1 -> (7, 0)."""
    match = re.match(r"(?:\d+:)?(\d+)\.(\d+)", package_version or "")
    if not match:
        raise ValueError(f"cannot read a Redis version from {package_version!r}")
    return int(match.group(1)), int(match.group(2))


def commands(user: str, version: tuple[int, int]) -> list[str]:
    """The commands a user may run on a Redis of this version."""
    if user == ADMIN:
        return ["@all"]
    if user == REPLICA:
        return list(REPLICA_COMMANDS)
    if user == SENTINEL:
        return list(SENTINEL_COMMANDS)
    base, newer = (CELERY_COMMANDS, NEWER_CELERY_COMMANDS) if user in CELERY_USERS else (EXPORTER_COMMANDS, NEWER_EXPORTER_COMMANDS)
    return list(base) + [name for name in newer if version >= SINCE[name]]


def default_user_on(clients_moving: bool, settings: str | None, acl: str | None) -> bool:
    """Whether `default` stays on: only while clients move (site.yml's Redis play), and only on a broker
    that let them in with a password alone before, whose settings (`settings`, the role's include
    file) set requirepass or whose ACL file (`acl`) has `default` on (a run that stopped halfway)."""
    before = re.search(r"^requirepass ", settings or "", re.M) or re.search(r"^user default on ", acl or "", re.M)
    return bool(clients_moving and before)


def user_rule(user: str, password: str, version: tuple[int, int]) -> str:
    """One `user` line of an ACL file; the password as its SHA-256 (the file holds no password)."""
    rule = ["user", user, "on", "#" + hashlib.sha256(password.encode()).hexdigest()]
    if user not in (EXPORTER,) + REPLICATION_USERS:
        rule.append("~*")
    if version >= CHANNEL_RULES:
        rule.append({EXPORTER: "resetchannels", REPLICA: "resetchannels", SENTINEL: "&__sentinel__:hello"}.get(user, "&*"))
    return " ".join(rule + ["+" + name for name in commands(user, version)])


def default_rule(redis_password: str, version: tuple[int, int], on: bool) -> str:
    """The `default` user: off and without a password, so that no client can log in as it; or, while
    clients move to their users, what it was before ACLs: `redis_password`.

    Off, it keeps every key and command all the same: Redis replays the append-only file as a client
    of `default`, and before redis/redis#14545 (Redis 8.4; Debian ships 7.0 and 8.0) EXEC checks the
    commands of each MULTI block it replays against that user's rules. With `-@all` Redis dropped
    every Celery acknowledgement (HDEL in MULTI) it replayed after a crash, so the acknowledged
    messages came back (redis/redis#14541). A client that has not logged in gets NOAUTH before any
    rule applies, and an off user without a password cannot be logged in as."""
    channels = ["&*"] if version >= CHANNEL_RULES else []
    if on:
        return " ".join(["user default on", "#" + hashlib.sha256(redis_password.encode()).hexdigest(), "~*"] + channels + ["+@all"])
    return " ".join(["user default off resetpass", "~*"] + channels + ["+@all"])


def acl_file(redis_password: str, version: tuple[int, int], default_user_on: bool = False, replicated: bool = False) -> str:
    """The text of Redis's ACL file: `default` (off unless clients still move to their users), then
    every user; with Sentinel (`replicated`), the replica's and Sentinel's users too."""
    lines = [default_rule(redis_password, version, default_user_on)]
    lines += [user_rule(user, user_password(redis_password, user), version)
              for user in USERS + (REPLICATION_USERS if replicated else ())]
    return "\n".join(lines) + "\n"


def sentinel_acl_file(redis_password: str, version: tuple[int, int]) -> str:
    """The text of Redis Sentinel's ACL file: `default` off, `admin` every command, each Celery user
    only the lookups of the primary (same passwords as on Redis, so a client holds one)."""
    lines = ["user default off resetpass resetkeys resetchannels -@all",
             user_rule(ADMIN, redis_password, version)]
    client_commands = list(SENTINEL_CLIENT_COMMANDS) + [name for name in NEWER_SENTINEL_CLIENT_COMMANDS if version >= SINCE[name]]
    for user in CELERY_USERS:
        digest = hashlib.sha256(user_password(redis_password, user).encode()).hexdigest()
        lines.append(" ".join(["user", user, "on", "#" + digest, "resetkeys", "resetchannels"] + ["+" + name for name in client_commands]))
    return "\n".join(lines) + "\n"
