# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The database connection budget: what each Airflow host may open, what PgBouncer pools, and
what PostgreSQL must admit.

Pure Python, no Ansible. cluster_plan.plan() calls `budget()` with each host's components and
counts; the unit tests in tests/unit/test_db_budget.py call it with lists and dicts.

Client connections are counted at their ceiling, from Airflow's own pool settings (which the
collection writes to airflow.cfg, so the count and the configuration cannot drift apart):

- every SQLAlchemy engine opens at most POOL_SIZE + MAX_OVERFLOW connections;
- the scheduler, dag-processor and triggerer each hold one metadata engine; each uvicorn worker
  of an api server holds two (the sync one, and the async one of the execution and REST APIs);
- the scheduler's executor reads task states through one result-backend engine;
- a Celery worker stores each task's result from the pool process that ran it: one connection
  per slot (worker_concurrency).

Without PgBouncer every client connection is a server connection, so PostgreSQL's
max_connections must hold them all. With PgBouncer (transaction pooling) the clients share two
server pools, sized by the transactions that run at once rather than by the clients: PostgreSQL
then needs the pools, their reserve and the direct connections only, a number that stays small
as workers are added.
"""

from __future__ import annotations

POOL_SIZE = 5
MAX_OVERFLOW = 10
ENGINE = POOL_SIZE + MAX_OVERFLOW

# Metadata engines per process of each component; the api server's count is per uvicorn worker.
METADATA_ENGINES = {"scheduler": 1, "dag-processor": 1, "triggerer": 1, "api-server": 2}
# The executor's result reads, on a host that runs the scheduler.
RESULT_ENGINES_SCHEDULER = 1

# PgBouncer's server pools: transactions at once, not clients. A scheduler, dag-processor or
# triggerer runs a few sessions at a time; an api server worker serves many requests at once.
# Celery writes a task's result in one transaction of milliseconds: one server connection per
# worker host is ample, and RESULT_POOL_MAX for any number of them.
METADATA_POOL_PER_PROCESS = 3
METADATA_POOL_PER_API_WORKER = 5
RESULT_POOL_PER_HOST = 1
RESULT_POOL_MAX = 20
MIN_POOL = 5
# PgBouncer's reserve_pool_size (per pool): extra server connections for clients that waited
# reserve_pool_timeout seconds.
RESERVE_POOL = 3
RESERVE_POOL_TIMEOUT = 3
# Connections that do not go through the pools: the migration (session-level locks), pg_dump, the
# metrics exporter, an operator's psql.
DIRECT = 10
# PostgreSQL's superuser_reserved_connections (its default, which the collection keeps).
SUPERUSER_RESERVED = 3
# PostgreSQL's max_connections behind PgBouncer unless set: fixed, so adding workers never
# restarts the database.
POOLED_MAX_CONNECTIONS = 100
# PgBouncer's file descriptors (LimitNOFILE of its unit): each client and server connection takes one.
PGBOUNCER_NOFILE = 65536


def round_up(number: int, step: int = 100) -> int:
    return (number + step - 1) // step * step


def host_clients(components: list[str], api_workers: int, concurrency: int) -> dict:
    """{"metadata": n, "result_backend": n}: the most connections a host's components open."""
    metadata = sum(METADATA_ENGINES[c] * ENGINE * (api_workers if c == "api-server" else 1)
                   for c in components if c in METADATA_ENGINES)
    result = (RESULT_ENGINES_SCHEDULER * ENGINE if "scheduler" in components else 0) + (
        concurrency if "worker" in components else 0)
    return {"metadata": metadata, "result_backend": result}


def pools(hosts: dict) -> dict:
    """PgBouncer's server pool per database, from the hosts' components (hosts as in budget())."""
    processes = sum(1 for h in hosts.values() for c in h["components"] if c in ("scheduler", "dag-processor", "triggerer"))
    api_workers = sum(h["api_workers"] for h in hosts.values() if "api-server" in h["components"])
    result_hosts = sum(1 for h in hosts.values() if {"scheduler", "worker"} & set(h["components"]))
    clients = {kind: sum(host_clients(h["components"], h["api_workers"], h["concurrency"])[kind] for h in hosts.values())
               for kind in ("metadata", "result_backend")}
    wanted = {"metadata": METADATA_POOL_PER_PROCESS * processes + METADATA_POOL_PER_API_WORKER * api_workers,
              "result_backend": min(RESULT_POOL_MAX, RESULT_POOL_PER_HOST * result_hosts)}
    # Never more than the clients could use, never fewer than MIN_POOL (or the clients, if fewer).
    return {kind: max(min(wanted[kind], clients[kind]), min(MIN_POOL, clients[kind])) for kind in wanted}


def budget(hosts: dict, pgbouncer: bool, max_connections=None, max_client_conn=None) -> dict:
    """The connection budget of the cluster.

    hosts: {host: {"components": [...], "api_workers": n, "concurrency": n}} for every Airflow host.
    max_connections, max_client_conn: the inventory's site_postgresql_max_connections and
    site_pgbouncer_max_client_conn, or None for the computed defaults.

    Returns {"clients": {host: n}, "client_total": n, "pools": {...} or {}, "reserve": n,
    "server": n, "max_connections": n, "max_client_conn": n (0 without PgBouncer), "errors": [...],
    "summary": str}. An error names the setting, the numbers and what would fit.
    """
    clients = {host: sum(host_clients(h["components"], h["api_workers"], h["concurrency"]).values())
               for host, h in hosts.items()}
    clients = {host: n for host, n in clients.items() if n}
    total = sum(clients.values())
    errors = []
    if pgbouncer:
        server_pools = pools(hosts)
        reserve = RESERVE_POOL * len(server_pools)
        server = sum(server_pools.values()) + reserve
    else:
        server_pools, reserve, server = {}, 0, total
    needed = server + DIRECT + SUPERUSER_RESERVED
    default_max = max(POOLED_MAX_CONNECTIONS, round_up(needed)) if pgbouncer else round_up(needed)
    chosen_max = default_max if max_connections is None else int(max_connections)
    if chosen_max < needed:
        through = (f"PgBouncer's pools (metadata {server_pools['metadata']} + result backend "
                   f"{server_pools['result_backend']} + reserve {reserve})" if pgbouncer
                   else "the clients' connections, each a server connection without PgBouncer (site_pgbouncer: false),")
        errors.append(f"site_postgresql_max_connections={chosen_max} is too small: {through} {server} + {DIRECT} direct + "
                      f"{SUPERUSER_RESERVED} superuser reserved = {needed}. Set it to at least {needed}, or leave it unset "
                      f"({default_max}).")
    chosen_clients = 0
    if pgbouncer:
        default_clients = max(100, round_up(total + total // 4))
        chosen_clients = default_clients if max_client_conn is None else int(max_client_conn)
        if chosen_clients < total:
            errors.append(f"site_pgbouncer_max_client_conn={chosen_clients} is below the {total} connections the Airflow "
                          f"hosts may open ({spread(clients)}). Set it to at least {total}, or leave it unset ({default_clients}).")
        elif chosen_clients + server > PGBOUNCER_NOFILE - 100:
            errors.append(f"site_pgbouncer_max_client_conn={chosen_clients} needs more file descriptors than PgBouncer's "
                          f"unit allows ({PGBOUNCER_NOFILE}); at most {PGBOUNCER_NOFILE - 100 - server}.")
    result = {"clients": clients, "client_total": total, "pools": server_pools, "reserve": reserve, "server": server,
              "max_connections": chosen_max, "max_client_conn": chosen_clients, "errors": errors}
    result["summary"] = summary(result, pgbouncer)
    return result


def spread(clients: dict) -> str:
    return ", ".join(f"{host} {n}" for host, n in clients.items())


def summary(result: dict, pgbouncer: bool) -> str:
    head = f"Database connections: the Airflow hosts may open {result['client_total']} ({spread(result['clients'])})"
    tail = (f"PostgreSQL max_connections {result['max_connections']} (needs {result['server']} + {DIRECT} direct + "
            f"{SUPERUSER_RESERVED} superuser reserved).")
    if not pgbouncer:
        return f"{head}, each a server connection (no PgBouncer); {tail}"
    pool = result["pools"]
    return (f"{head}; PgBouncer admits {result['max_client_conn']} and gives them {result['server']} server connections "
            f"(pools: metadata {pool['metadata']}, result backend {pool['result_backend']}; reserve {result['reserve']}); {tail}")
