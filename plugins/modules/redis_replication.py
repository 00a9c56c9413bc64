#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Module airflow_ops.celery.redis_replication: this broker host's place under Redis Sentinel."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_replication
short_description: Point this host's Redis at the primary the Sentinels name, and its Sentinel at the group
version_added: "0.1.0"
description:
  - For a broker of three or more hosts under Redis Sentinel (roles/redis). Asks every broker host's Sentinel where
    the primary of O(master_name) is; the most named wins, and when none names one (a new group) it is
    the first of O(hosts).
  - This host's Redis, when it is a primary but not that one (a new or replaced host, or an old primary that came back
    unseen), becomes its replica (REPLICAOF, CONFIG REWRITE). A replica is left to Sentinel. In a new group, a Redis
    that holds keys is not made a replica of the first host (it would lose them); the module fails instead.
  - This host's Sentinel watches O(master_name) (SENTINEL MONITOR at the primary, when its state file
    O(state_file) names none) with O(quorum) and O(settings) (SENTINEL SET of what differs). It never moves the
    primary; Sentinel keeps the address current itself.
  - The decisions are plugins/module_utils/redis_sentinel.py's, with unit tests. Supports check mode.
options:
  master_name:
    description: The name the Sentinels know the primary group by.
    type: str
    required: true
  address:
    description: The address this host's Redis and Sentinel listen on.
    type: str
    required: true
  hosts:
    description: The address of every broker host, this one's included; the first is the primary of a new group.
    type: list
    elements: str
    required: true
  port:
    description: The port every broker host's Redis listens on.
    type: int
    required: true
  sentinel_port:
    description: The port every broker host's Sentinel listens on.
    type: int
    required: true
  quorum:
    description: Sentinels that must agree the primary is down before a failover.
    type: int
    required: true
  settings:
    description: Per-primary Sentinel settings (C(down-after-milliseconds), C(failover-timeout), C(auth-user), C(auth-pass), ...).
    type: dict
    default: {}
  state_file:
    description: The file this host's Sentinel keeps its state in.
    type: path
    required: true
  user:
    description: The user to log in to Redis and the Sentinels as.
    type: str
    required: true
  password:
    description: That user's password.
    type: str
    required: true
  ca_file:
    description: CA certificate to verify Redis and the Sentinels against; empty for plain TCP.
    type: path
    default: ""
author:
  - airflow_ops maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Point Redis and Sentinel at the primary
  airflow_ops.celery.redis_replication:
    master_name: airflow
    address: 10.0.0.11
    hosts: [10.0.0.11, 10.0.0.12, 10.0.0.13]
    port: 6379
    sentinel_port: 26379
    quorum: 2
    settings: {down-after-milliseconds: 5000}
    state_file: /var/lib/airflow-ops-sentinel/sentinel.conf
    user: admin
    password: "{{ redis_password }}"
"""

RETURN = r"""
primary:
  description: The primary, C(address:port).
  returned: always
  type: str
primary_from:
  description: Where the answer came from (C(N of M Sentinels), or C(bootstrap)).
  returned: always
  type: str
role:
  description: This host's Redis role before the module ran (C(master) or C(slave)).
  returned: always
  type: str
commands:
  description: The commands sent (or, in check mode, to be sent), passwords hidden.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

try:
    from ansible_collections.airflow_ops.celery.plugins.module_utils import redis_sentinel as rs
except ImportError:  # the unit tests import module_utils beside this file
    import redis_sentinel as rs


def ask_sentinels(p):
    answers = {}
    for host in p["hosts"]:
        client = None
        try:
            client = rs.Client(host, p["sentinel_port"], p["user"], p["password"], p["ca_file"])
            reply = client.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", p["master_name"])
            answers[host] = rs.endpoint(reply[0], reply[1]) if reply else None
        except rs.RespError:
            answers[host] = None
        finally:
            if client:
                client.close()
    return answers


def main():
    module = AnsibleModule(
        argument_spec=dict(
            master_name=dict(type="str", required=True),
            address=dict(type="str", required=True),
            hosts=dict(type="list", elements="str", required=True),
            port=dict(type="int", required=True),
            sentinel_port=dict(type="int", required=True),
            quorum=dict(type="int", required=True),
            settings=dict(type="dict", default={}),
            state_file=dict(type="path", required=True),
            user=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            ca_file=dict(type="path", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["address"] not in p["hosts"]:
        module.fail_json(msg=f"{p['address']} is not among the broker hosts {p['hosts']}")
    me = rs.endpoint(p["address"], p["port"])
    primary, source = rs.choose_primary(ask_sentinels(p), rs.endpoint(p["hosts"][0], p["port"]))
    try:
        with open(p["state_file"]) as handle:
            state = rs.parse_state(handle.read(), p["master_name"])
    except FileNotFoundError:
        state = {}
    settings = {key: str(value) for key, value in p["settings"].items()}
    sent, role = [], []
    try:
        redis = rs.Client(p["address"], p["port"], p["user"], p["password"], p["ca_file"])
        role = redis.call("ROLE")
        replica = rs.replica_commands(role, me, primary)
        refusal = rs.bootstrap_refusal(source, redis.call("DBSIZE") if replica else 0, me, primary)
        if refusal:
            module.fail_json(msg=refusal, primary=primary, primary_from=source, commands=[])
        if not module.check_mode:
            for command in replica:
                redis.call(*command)
        redis.close()
        commands = rs.sentinel_commands(state, p["master_name"], primary, p["quorum"], settings)
        if commands and not module.check_mode:
            sentinel = rs.Client(p["address"], p["sentinel_port"], p["user"], p["password"], p["ca_file"])
            for command in commands:
                sentinel.call(*command)
            sentinel.close()
        sent = replica + commands
    except rs.RespError as err:
        module.fail_json(msg=f"Redis or Sentinel on this host refused the replication settings: {err}",
                         primary=primary, primary_from=source, commands=[rs.redact(c) for c in sent])
    module.exit_json(changed=bool(sent), primary=primary, primary_from=source, role=role[0] if role else "",
                     commands=[rs.redact(c) for c in sent])


if __name__ == "__main__":
    main()
