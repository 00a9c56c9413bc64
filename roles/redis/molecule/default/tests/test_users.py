"""The broker's users (plugins/plugin_utils/redis_acl.py): each Celery user runs what Celery sends
and nothing that would let task code on a worker reconfigure, wipe, watch or stop the broker; the
exporter reads statistics only; a broker set up before ACL users moves to them with its queued
messages. Runs after the other files (side effect, converge, exporter scrapes): the ACL log must
be empty by then."""

import json
import shlex

import pytest

from airflow_ops_testlib import redis_acl
from test_default import PASSWORD, cli

# What task code holding the worker's broker login must not be able to do.
FORBIDDEN = [
    "CONFIG GET *", "CONFIG SET maxmemory-policy allkeys-lru", "CONFIG REWRITE", "MODULE LIST",
    "MODULE LOAD /tmp/x.so", "FLUSHALL", "FLUSHDB", "REPLICAOF 203.0.113.1 6379", "SLAVEOF NO ONE",
    "DEBUG SLEEP 0", "SHUTDOWN NOSAVE", "ACL LIST", "ACL SETUSER worker +@all", "MONITOR",
    "CLIENT KILL TYPE normal", "CLIENT LIST", "KEYS *", "SCAN 0", "SAVE", "BGREWRITEAOF", "INFO",
]
# What kombu's Redis transport sends (a queue, the unacked index, a binding, pub/sub, a script).
CELERY = [
    "LPUSH molecule:q m1", "LLEN molecule:q", "BRPOP molecule:q 1", "RPUSH molecule:q m2", "RPOP molecule:q",
    "SADD _kombu.binding.molecule x", "SMEMBERS _kombu.binding.molecule", "SREM _kombu.binding.molecule x",
    "ZADD unacked_index 1 t", "ZRANGEBYSCORE unacked_index 0 2", "ZREM unacked_index t",
    "HSET unacked t m", "HGET unacked t", "HDEL unacked t", "SET unacked_mutex 1 NX PX 1000", "GET unacked_mutex",
    "DEL unacked_mutex", "PUBLISH /0.celeryev/worker.heartbeat x", "EVAL \"return redis.call('TIME')[1]\" 0",
    "MULTI", "EXEC", "PING",
]


def as_user(host, user, commands):
    """Lines of redis-cli's answers to `commands`, sent one per line after AUTH as `user`."""
    password = redis_acl.user_password(PASSWORD, user)
    script = "\n".join([f"AUTH {user} {password}"] + commands)
    out = host.run(f"printf '%s\\n' {shlex.quote(script)} | redis-cli --no-auth-warning -h 127.0.0.1").stdout
    return [line for line in out.splitlines() if line.strip()]  # redis-cli follows an error with an empty line


def acl_log(host):
    """ACL LOG as admin: [(username, reason, object)]."""
    entries = json.loads(cli(host, "--json", "ACL", "LOG", "128").stdout or "[]")
    return [(entry["username"], entry["reason"], entry["object"]) for entry in entries]


# The logins the tests refuse on purpose: the password alone (`default`, in side_effect.yml and
# test_default.py) and a wrong admin password (test_default.py).
DELIBERATE = {("default", "auth"), ("admin", "auth")}


def refusals(host):
    return [entry for entry in acl_log(host) if entry[:2] not in DELIBERATE]


def test_acl_log_is_empty_after_converge_side_effect_and_scrapes(host):
    """No client of the broker was refused a command, a key or a channel, and none of its users
    failed to log in: not the role's checks, the restarts, the move to ACL users, the exporter's
    scrapes (test_exporter.py ran before). The log holds only the logins refused on purpose."""
    assert refusals(host) == []


def test_a_celery_user_runs_what_kombu_sends(host):
    answers = as_user(host, "worker", CELERY)
    assert answers[0] == "OK"
    assert not [answer for answer in answers if "NOPERM" in answer or answer.startswith("ERR")], answers
    assert refusals(host) == []


@pytest.mark.parametrize("user", ["worker", "exporter"])
def test_task_code_with_a_broker_login_cannot_reconfigure_wipe_watch_or_stop_it(host, user):
    """Each command as the worker's (and the exporter's) user: refused. DEBUG and MODULE LOAD are off for every user (Redis's enable-*-command).
    The exporter may read statistics and settings (INFO, CONFIG GET), nothing else."""
    commands = [command for command in FORBIDDEN
                if not (user == "exporter" and command.startswith(("INFO", "CONFIG GET")))]
    answers = as_user(host, user, commands)
    assert answers[0] == "OK", answers
    refused = dict(zip(commands, answers[1:]))
    allowed = {command: answer for command, answer in refused.items()
               if not ("NOPERM" in answer or "command not allowed" in answer)}
    assert allowed == {}
    assert cli(host, "ping").stdout.strip() == "PONG"  # SHUTDOWN did not stop it


def test_the_exporter_reads_no_key(host):
    assert cli(host, "SET", "molecule:secret", "x").stdout.strip() == "OK"
    answers = as_user(host, "exporter", ["GET molecule:secret", "LLEN molecule:q", "PUBLISH c x"])
    assert all("NOPERM" in answer for answer in answers[1:]), answers


def test_the_refusals_are_in_the_acl_log(host):
    """What the tests above were refused is what ACL LOG lists; the log is reset for the next run."""
    assert {(user, reason) for user, reason, _object in refusals(host)} == {("worker", "command"), ("exporter", "command")}
    assert cli(host, "ACL", "LOG", "RESET").stdout.strip() == "OK"


def test_an_old_broker_moved_to_users_with_its_queue(host):
    """side_effect.yml configured the broker as before ACL users, queued three messages with the
    password alone, applied the role as site.yml's Redis play does (`default` kept on: old clients
    still log in), then its last play (`default` off); the worker user found the three messages
    throughout, and the next run kept `default` off."""
    move = json.loads(host.file("/var/tmp/molecule-acl-move.json").content_string)
    assert move["kept_while_moving"] is True and move["kept_after"] is False, move
    assert move["moving"] == ["OK", "3", "OK", "3"], move
    moved = [line for line in move["moved"] if line.strip()]  # redis-cli follows an error with an empty line
    assert moved[0].startswith("WRONGPASS") and "NOAUTH" in moved[1], move
    assert moved[2:] == ["OK", "3"], move
