#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
# The work is done on the controller by the action plugin of the same name (plugins/action/).

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_plan
short_description: Plan an Airflow CeleryExecutor cluster from the inventory and check every cluster rule
description:
  - Runs on the controller, once per run (C(run_once=true)); reads the inventory's groups (redis,
    postgresql, scheduler, api_server, workers, flower, monitoring), each host's default IPv4 address
    and the inputs the cluster rules read.
  - Returns for every host its roles, Airflow components, firewall rules, the names of the secrets it
    needs and its certificate names; for the cluster the broker, database, result backend, api server
    and StatsD endpoints, the clients PostgreSQL admits, max_connections and Prometheus's targets.
  - Fails, before any host changes, with one message per problem naming the host, the variable and
    what is accepted. Secret values are never returned.
  - The logic lives in plugins/plugin_utils/cluster_plan.py, unit-tested in tests/unit/.
author: airflow_ops maintainers (!UNKNOWN)
options:
  only:
    description:
      - C(plan) plans and checks the cluster.
      - C(peers) only lists the hosts outside this run (C(--limit)) whose address the plan needs and
        does not know yet, so that their facts can be gathered first.
    type: str
    choices: [plan, peers]
    default: plan
  limit_notes:
    description:
      - Under C(--limit), warn about what this run cannot apply on hosts outside it (a new worker's
        address in pg_hba and the firewall rules of the hosts it talks to). The notes are returned either way.
    type: bool
    default: true
  leaving:
    description:
      - Workers to plan without, as if they had left C(workers) already; the decommission playbook
        renders pg_hba.conf from that plan. Each must be in C(workers).
      - An entry of C(site_worker_networks) or C(site_postgresql_extra_clients) that is exactly a
        leaving worker's address is left out of that plan as well; RV(leaving) lists it.
    type: list
    elements: str
    default: []
  database_before:
    description:
      - What the database host served before this run. C(new), nothing yet; C(direct), Airflow's databases
        to clients connecting to PostgreSQL itself (a cluster set up before PgBouncer); C(pooled), through
        PgBouncer. With C(direct) and C(site_pgbouncer) on, PostgreSQL keeps admitting every client
        directly for this run, while the clients move to PgBouncer (a note says so); the next run narrows it.
        With C(pooled) and C(site_pgbouncer) off, PgBouncer keeps serving (C(postgresql.pgbouncer.leaving)) until
        site.yml's last play stops it, after the clients moved to PostgreSQL.
        Without it, the plan assumes the database host already serves as the inventory says (nothing moves).
    type: str
    choices: [new, direct, pooled]
attributes:
  check_mode:
    description: Runs in check mode as in a normal run; it changes nothing either way.
    support: full
  diff_mode:
    description: Nothing to show a diff of.
    support: none
"""

EXAMPLES = r"""
- name: Plan the cluster and check the inventory
  airflow_ops.celery.cluster_plan:
  register: __site_plan
  run_once: true
"""

RETURN = r"""
hosts:
  description: Per host, its roles, components, airflow_components, address, listen ports,
    firewall_rules, db_clean, tls_names and the names of its secrets.
  returned: success
  type: dict
broker:
  description: The Redis broker's inventory host, address and port.
  returned: success
  type: dict
database:
  description: The metadata database's host, address, port, name and user.
  returned: success
  type: dict
postgresql:
  description: The clients pg_hba admits (airflow_clients, result_backend_clients) and max_connections.
  returned: success
  type: dict
tls_certificates:
  description:
    - The certificates the monitoring host watches for their expiry, each a dict of C(host), C(service) and C(path)
      (every TLS server's, and C(ca)); empty without TLS or a monitoring host.
  returned: success
  type: list
  elements: dict
errors:
  description: Every problem of the inventory, when it has any.
  returned: failure
  type: list
  elements: str
leaving:
  description:
    - With C(leaving), per leaving worker, its C(address); C(exact), the entries of
      C(site_worker_networks) and C(site_postgresql_extra_clients) that are its address alone (left
      out of the plan, to take out of the inventory too); and C(networks), the wider entries that
      still admit its address.
  returned: leaving is set
  type: dict
peers:
  description: With only=peers, the hosts whose facts to gather first.
  returned: only=peers
  type: list
  elements: str
"""
