# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Redis Sentinel for the broker hosts (three or more in `redis`): which instance is the primary, what
this host's Redis and Sentinel must be told, and a small RESP client to tell them. Used by the module
airflow_ops.celery.redis_replication on each broker host; the decisions are pure functions with unit
tests (tests/unit/test_redis_sentinel.py).

Who is the primary is Sentinel's to say once it watches one: Ansible only bootstraps a new group (the
first host of `redis`) and points a Redis that is not the primary (a new or replaced host, or an old
primary that came back without Sentinel reaching it) at the one the Sentinels name. It never moves
the primary, and leaves the address Sentinel rewrites into its own state file alone."""

from __future__ import annotations

import socket
import ssl
from collections import Counter

# Sentinel's own defaults: its state file leaves out a setting at its default value.
SENTINEL_DEFAULTS = {"down-after-milliseconds": "30000", "failover-timeout": "180000", "parallel-syncs": "1",
                     "auth-user": "", "auth-pass": ""}


class RespError(Exception):
    """An error reply (-ERR ..., -NOPERM ...) or a connection that failed."""


def encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def decode(stream):
    """One reply from a file-like object of bytes: str, int, None, a list, or RespError (returned, not raised)."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise RespError("the connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        return RespError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [decode(stream) for _unused in range(size)]
    raise RespError(f"unexpected reply {line[:40]!r}")


class Client:
    """One connection to a Redis or Sentinel, logged in as `user`; over TLS verified against `ca_file`."""

    def __init__(self, host: str, port: int, user: str, password: str, ca_file: str = "", timeout: float = 3.0):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            if ca_file:
                context = ssl.create_default_context(cafile=ca_file)
                sock = context.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as err:
            raise RespError(f"cannot connect to {host}:{port}: {err}") from err
        self.sock = sock
        self.stream = sock.makefile("rb")
        self.call("AUTH", user, password)

    def call(self, *args):
        try:
            self.sock.sendall(encode(args))
            reply = decode(self.stream)
        except OSError as err:
            raise RespError(f"{args[0]}: {err}") from err
        if isinstance(reply, RespError):
            raise RespError(f"{' '.join(str(a) for a in args[:2])}: {reply}")
        return reply

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def endpoint(address: str, port) -> str:
    """address:port, an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def split(value: str):
    """(address, port) of an endpoint()."""
    address, port = value.rsplit(":", 1)
    return address.strip("[]"), port


def choose_primary(answers: dict, bootstrap: str):
    """The primary ("address:port") from the Sentinels' answers (sentinel -> "address:port", or None where
    one knows no primary or did not answer): the most named; none named: `bootstrap` (a new group).
    Returns (primary, where it came from)."""
    named = Counter(answer for answer in answers.values() if answer)
    if not named:
        return bootstrap, "bootstrap"
    (primary, votes), = named.most_common(1)
    return primary, f"{votes} of {len(answers)} Sentinels"


def parse_state(text: str, name: str) -> dict:
    """What a Sentinel's state file says of the primary group `name`: {} if it watches none of that
    name, else its address, port and quorum and each per-primary setting it holds."""
    found = {}
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) >= 6 and words[:2] == ["sentinel", "monitor"] and words[2] == name:
            found.update(address=words[3], port=words[4], quorum=words[5])
        elif len(words) >= 4 and words[0] == "sentinel" and words[1] in SENTINEL_DEFAULTS and words[2] == name:
            found[words[1]] = " ".join(words[3:]).strip('"')
    if "address" not in found:
        return {}
    state = dict(SENTINEL_DEFAULTS)
    state.update(found)
    return state


def sentinel_commands(state: dict, name: str, primary: str, quorum: int, settings: dict) -> list:
    """The SENTINEL commands that make this Sentinel watch `name` with `settings`: MONITOR (at `primary`)
    when it watches nothing of that name, then SET of what differs. A Sentinel that watches it already
    keeps the address it has (it follows failovers itself)."""
    address, port = split(primary)
    commands = []
    if not state:
        commands.append(["SENTINEL", "MONITOR", name, address, port, str(quorum)])
        state = dict(SENTINEL_DEFAULTS, quorum=str(quorum))
    elif state["quorum"] != str(quorum):
        commands.append(["SENTINEL", "SET", name, "quorum", str(quorum)])
    for key, value in settings.items():
        if state.get(key, SENTINEL_DEFAULTS.get(key)) != str(value):
            commands.append(["SENTINEL", "SET", name, key, str(value)])
    return commands


def replica_commands(role: list, me: str, primary: str) -> list:
    """What this host's Redis must be told, from its ROLE reply: a primary that is not the one the
    Sentinels name (a new host, a replaced one, an old primary that came back unseen) replicates it.
    A replica is Sentinel's to move (it points replicas at a new primary itself)."""
    if not role or role[0] != "master" or primary == me:
        return []
    address, port = split(primary)
    return [["REPLICAOF", address, port], ["CONFIG", "REWRITE"]]


def bootstrap_refusal(source: str, keys: int, me: str, primary: str) -> str:
    """Why this host's Redis must not become a replica now ("" if it may): in a new group (no Sentinel
    names a primary) the first host is the primary, and a Redis that holds keys (a broker growing from
    one host, listed after a new one) would lose them to the new one's empty data set."""
    if source != "bootstrap" or keys <= 0 or me == primary:
        return ""
    return (f"{me} holds {keys} keys, and a new Sentinel group's primary is the first host of `redis` ({primary}), whose "
            f"data would replace them. Put this host first in `redis` (growing from one broker host, it stays the primary).")


def redact(command: list) -> str:
    """A command as the module reports it: a password never."""
    if len(command) >= 5 and command[:2] == ["SENTINEL", "SET"] and command[3] == "auth-pass":
        return " ".join(command[:4] + ["********"])
    return " ".join(command)
