# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The checks of each role's inputs that a type in meta/argument_specs.yml cannot express, one
function per role: `CHECKS[role](values, ctx)` returns one message per problem, each naming the
variable and what is accepted; a message about a secret names it, never its value. Addresses and
networks go through `ipaddress`.

The action plugin `airflow_ops.celery.role_preflight` reads a role's inputs (every option of its
argument spec) into `values`; tests/unit/test_role_inputs.py calls the functions with dicts. The
shared Airflow inputs (role `_airflow_common`) have their checks in airflow_inputs.py.
"""

from __future__ import annotations

import ipaddress
import re

try:  # as the collection's plugin_utils under Ansible, or beside this file in the unit tests
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import airflow_inputs, dag_bundles, web_auth
except ImportError:
    import airflow_inputs
    import dag_bundles
    import web_auth

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
LINE_BREAK = re.compile("[\r\n\x00]")


def breaks_lines(value) -> bool:
    """Whether a value holds CR, LF or NUL anywhere: in a string, or in a key or item of a mapping or list."""
    if isinstance(value, str):
        return bool(LINE_BREAK.search(value))
    if isinstance(value, dict):
        return any(breaks_lines(key) or breaks_lines(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(breaks_lines(item) for item in value)
    return False


def one_line_parts(name: str, value):
    """The value without the fields that are meant to hold several lines (a bundle's SSH key and
    known_hosts, which the role writes to files of their own)."""
    if name == "airflow_dag_bundles" and isinstance(value, list):
        return [{key: item for key, item in bundle.items() if key not in dag_bundles.MULTILINE_FIELDS}
                if isinstance(bundle, dict) else bundle for bundle in value]
    return value


def line_break_errors(values: dict, host: str) -> list[str]:
    """Every input a role writes into a config file, environment file or unit is one line there: a
    CR, LF or NUL would end that line and start another the user did not mean (a second directive, a
    second environment variable). Names the inputs, never their values."""
    bad = sorted(name for name, value in values.items() if breaks_lines(one_line_parts(name, value)))
    if not bad:
        return []
    return [f"{', '.join(bad)} on {host} {'holds' if len(bad) == 1 else 'hold'} a carriage return, line feed or NUL, which "
            "would end its line in the config file or unit it is written to. Every value must be on one line (a secret "
            "read from a file often ends with a newline: strip it, e.g. with | trim)."]


def is_network(value) -> bool:
    """One IPv4/IPv6 address or network (CIDR), with nothing around it."""
    if not isinstance(value, str) or value != value.strip() or not value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def not_networks(values) -> list[str]:
    return [str(value) for value in values or [] if not is_network(value)]


def whole(value):
    """An int input as the argument spec accepts it (an int, or a string of one); else None."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        return None


def port(value) -> bool:
    number = whole(value)
    return number is not None and 1 <= number <= 65535


def identifier(value) -> bool:
    return bool(IDENTIFIER.fullmatch(str(value)))


def redis(v: dict, ctx: dict) -> list[str]:
    errors = []
    password = str(v.get("redis_password") or "")
    if len(password) < 12 or re.search(r"\s", password):
        errors.append('redis_password must be at least 12 characters without whitespace. Set it from Ansible Vault, e.g. '
                      'redis_password: "{{ vault_redis_password }}".')
    bind = v.get("redis_bind") or []
    if not bind or "" in bind or not re.fullmatch(r"[0-9]+([kKmMgG][bB]?)?", str(v.get("redis_maxmemory"))) \
            or not port(v.get("redis_port")):
        errors.append(f"Invalid Redis settings: redis_bind={bind} (every entry must be an address; an empty one means this "
                      "host has no default IPv4 route, so set redis_bind explicitly), "
                      f"redis_maxmemory={v.get('redis_maxmemory')} (e.g. 0, 512mb, 2gb), redis_port={v.get('redis_port')} (1-65535).")
    tls = [str(v.get(name) or "") for name in ("redis_tls_cert_file", "redis_tls_key_file", "redis_tls_ca_file")]
    if len([path for path in tls if path]) not in (0, 3):
        errors.append("Set all of redis_tls_cert_file, redis_tls_key_file and redis_tls_ca_file (TLS), or none (plain TCP): "
                      f'redis_tls_cert_file="{tls[0]}", redis_tls_key_file="{tls[1]}", redis_tls_ca_file="{tls[2]}".')
    if v.get("redis_exporter_enabled") and (not str(v.get("redis_exporter_address") or "")
                                            or not port(v.get("redis_exporter_port"))
                                            or whole(v.get("redis_exporter_port")) == whole(v.get("redis_port"))):
        errors.append(f'Invalid exporter settings: redis_exporter_address="{v.get("redis_exporter_address") or ""}" (empty: set it, '
                      f"or redis_bind), redis_exporter_port={v.get('redis_exporter_port')} (1-65535, not redis_port "
                      f"{v.get('redis_port')}).")
    hosts = v.get("redis_replication_hosts") or []
    addresses = [str((host or {}).get("address") or "") for host in hosts]
    if len(hosts) == 2:
        errors.append("redis_replication_hosts lists 2 broker hosts: Redis Sentinel needs 3 or more (a majority must see the "
                      "primary down), or 1 for a single Redis. Put a third host into `redis`, or take one out.")
    if len(hosts) >= 3:
        if bind and bind[0] not in addresses:
            errors.append(f"redis_bind starts with {bind[0]}, which is not this host's address among the broker hosts "
                          f"({', '.join(addresses)}): replicas and Sentinels reach each other there. Put it first in redis_bind.")
        name = str(v.get("redis_sentinel_master_name") or "")
        down, failover = whole(v.get("redis_sentinel_down_after_ms")), whole(v.get("redis_sentinel_failover_timeout_ms"))
        if (not re.fullmatch(r"[A-Za-z0-9._-]+", name) or not port(v.get("redis_sentinel_port"))
                or whole(v.get("redis_sentinel_port")) in (whole(v.get("redis_port")), whole(v.get("redis_exporter_port")))
                or down is None or down < 1000 or failover is None or failover < 2 * down):
            errors.append(f"Invalid Sentinel settings: redis_sentinel_master_name={name!r} (letters, digits, . _ -), "
                          f"redis_sentinel_port={v.get('redis_sentinel_port')} (1-65535, not redis_port nor redis_exporter_port), "
                          f"redis_sentinel_down_after_ms={v.get('redis_sentinel_down_after_ms')} (1000 or more), "
                          f"redis_sentinel_failover_timeout_ms={v.get('redis_sentinel_failover_timeout_ms')} (at least twice "
                          "redis_sentinel_down_after_ms).")
    fixed = list(ctx.get("fixed_directives", []))
    overridden = [key.lower() for key in (v.get("redis_extra_config") or {}) if key.lower() in fixed]
    if overridden:
        errors.append(f"redis_extra_config may not set {', '.join(overridden)}: the role fixes {', '.join(fixed)} (a Celery "
                      "broker must persist and never evict messages; address, port and password have their own inputs).")
    return errors


def postgresql(v: dict, ctx: dict) -> list[str]:
    errors = []
    for name in ("postgresql_airflow_password", "postgresql_result_backend_password"):
        if len(str(v.get(name) or "")) < 12:
            errors.append(f"{name} must be at least 12 characters. Set it from Ansible Vault (vault_{name}).")
    users = (v.get("postgresql_airflow_user"), v.get("postgresql_result_backend_user"))
    databases = (v.get("postgresql_airflow_database"), v.get("postgresql_result_backend_database"))
    if users[0] == users[1] or databases[0] == databases[1]:
        errors.append(f"postgresql_result_backend_user ({users[1]}) must differ from postgresql_airflow_user ({users[0]}), and "
                      f"postgresql_result_backend_database ({databases[1]}) from postgresql_airflow_database ({databases[0]}): "
                      "workers log in to the result backend and must not reach the Airflow metadata.")
    listen = v.get("postgresql_listen_addresses") or []
    airflow_bad = not_networks(v.get("postgresql_airflow_clients"))
    backend_bad = not_networks(v.get("postgresql_result_backend_clients"))
    cert, key = str(v.get("postgresql_tls_cert_file") or ""), str(v.get("postgresql_tls_key_file") or "")
    max_connections = v.get("postgresql_max_connections")
    if (not listen or "" in listen or airflow_bad or backend_bad
            or not all(identifier(name) for name in users + databases)
            or not re.fullmatch(r"[0-9]+(kB|MB|GB|TB)?", str(v.get("postgresql_shared_buffers")))
            or (whole(max_connections) or 0) < 10
            or not port(v.get("postgresql_port")) or bool(cert) != bool(key)):
        errors.append(
            f"Invalid PostgreSQL settings: postgresql_listen_addresses={listen} (an empty entry means this host has no default "
            "IPv4 route: set the list explicitly); "
            f"postgresql_airflow_clients={v.get('postgresql_airflow_clients')} (IPv4/IPv6 addresses or CIDRs; not valid: "
            f"{', '.join(airflow_bad)}; site.yml lists the Airflow hosts' addresses and site_postgresql_extra_clients here); "
            f"postgresql_result_backend_clients={v.get('postgresql_result_backend_clients')} (IPv4/IPv6 addresses or CIDRs; "
            f"not valid: {', '.join(backend_bad)}); postgresql_airflow_user={users[0]}, postgresql_airflow_database="
            f"{databases[0]}, postgresql_result_backend_user={users[1]} and postgresql_result_backend_database={databases[1]} "
            f"(lower-case identifiers); postgresql_shared_buffers={v.get('postgresql_shared_buffers')} (e.g. 128MB, 2GB); "
            f"postgresql_max_connections={max_connections} (at least 10); postgresql_port={v.get('postgresql_port')}; "
            f'postgresql_tls_cert_file="{cert}" and postgresql_tls_key_file="{key}" (both or neither).')
    exporter_user = ctx.get("exporter_user", "prometheus")
    address = str(v.get("postgresql_exporter_address") or "")
    if v.get("postgresql_exporter_enabled") and (not address or address == "*" or not port(v.get("postgresql_exporter_port"))
                                                 or whole(v.get("postgresql_exporter_port")) == whole(v.get("postgresql_port"))
                                                 or exporter_user in users):
        errors.append(f'Invalid exporter settings: postgresql_exporter_address="{address}" (one address, not empty or *: set '
                      f"it, or postgresql_listen_addresses), postgresql_exporter_port={v.get('postgresql_exporter_port')} "
                      f"(1-65535, not postgresql_port {v.get('postgresql_port')}); the login `{exporter_user}` is the "
                      "exporter's, so neither postgresql_airflow_user nor postgresql_result_backend_user may be it.")
    if v.get("postgresql_pgbouncer_enabled"):
        bouncer = v.get("postgresql_pgbouncer_port")
        direct_bad = not_networks(v.get("postgresql_direct_clients"))
        sizes = {name: whole(v.get(name)) for name in ("postgresql_pgbouncer_max_client_conn", "postgresql_pgbouncer_metadata_pool",
                                                       "postgresql_pgbouncer_result_backend_pool")}
        if (not port(bouncer) or whole(bouncer) in (whole(v.get("postgresql_port")), whole(v.get("postgresql_exporter_port")))
                or direct_bad or any((size or 0) < 1 for size in sizes.values())
                or (whole(v.get("postgresql_pgbouncer_reserve_pool")) is None or whole(v.get("postgresql_pgbouncer_reserve_pool")) < 0)):
            errors.append(f"Invalid PgBouncer settings: postgresql_pgbouncer_port={bouncer} (1-65535, not postgresql_port "
                          f"{v.get('postgresql_port')} nor postgresql_exporter_port {v.get('postgresql_exporter_port')}); "
                          + "; ".join(f"{name}={value} (at least 1)" for name, value in sizes.items())
                          + f"; postgresql_pgbouncer_reserve_pool={v.get('postgresql_pgbouncer_reserve_pool')} (0 or more); "
                          f"postgresql_direct_clients={v.get('postgresql_direct_clients')} (IPv4/IPv6 addresses or CIDRs; not valid: "
                          f"{', '.join(direct_bad)}).")
    if v.get("postgresql_exporter_enabled"):
        errors += login_list_errors("postgresql_exporter_basic_auth", v.get("postgresql_exporter_basic_auth"), "prometheus", optional=True)
        cert, key = str(v.get("postgresql_exporter_tls_cert_file") or ""), str(v.get("postgresql_exporter_tls_key_file") or "")
        if bool(cert) != bool(key):
            errors.append(f'postgresql_exporter_tls_cert_file="{cert}" and postgresql_exporter_tls_key_file="{key}" (both or neither).')
    return errors


def worker(v: dict, ctx: dict) -> list[str]:
    queues = v.get("worker_queues") or []
    visibility = ctx.get("visibility_timeout", 21600)
    concurrency, stop = v.get("worker_concurrency"), v.get("worker_stop_timeout")
    errors = []
    if ((whole(concurrency) or 0) < 1 or not queues
            or [queue for queue in queues if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(queue))]
            or not 1 <= (whole(stop) or 0) <= (whole(visibility) or 21600)):
        errors.append(f"Invalid worker settings: worker_concurrency={concurrency} (at least 1); worker_queues={queues} (at least one "
                      f"name of letters, digits, _.-); worker_stop_timeout={stop} (seconds, at least the longest task, at most "
                      f"airflow_celery_visibility_timeout={visibility}, after which Redis hands an unfinished task to another worker).")
    memory = str(v.get("worker_memory_max", "85%")).strip()
    if not memory_bound(memory):
        errors.append(f"worker_memory_max={v.get('worker_memory_max')!r} must be a memory size for systemd's MemoryMax: a whole "
                      "number of bytes with K, M, G or T (at least 256M), or a percentage of the host's memory (10%-100%).")
    for name in ("worker_max_tasks_per_child", "worker_max_memory_per_child"):
        if whole(v.get(name, 0)) is None or whole(v.get(name, 0)) < 0:
            errors.append(f"{name}={v.get(name)!r} must be a whole number, 0 for no limit.")
    return errors


MEMORY_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_bound(text: str) -> bool:
    """A worker_memory_max systemd takes and that leaves a worker room to run: 256M or more, or 10%-100%."""
    percent = re.fullmatch(r"([0-9]{1,3})%", text)
    if percent:
        return 10 <= int(percent.group(1)) <= 100
    size = re.fullmatch(r"([0-9]+)([KMGT]?)", text)
    return bool(size) and int(size.group(1)) * MEMORY_UNITS[size.group(2)] >= 256 << 20


def login_list_errors(name: str, value, user: str = "ops", optional: bool = False) -> list[str]:
    """A login list (web_auth.LOGINS: Flower's, Prometheus's, the PostgreSQL exporter's), or empty where optional."""
    if (optional and not value) or web_auth.LOGINS.fullmatch(str(value or "")):
        return []
    return [f'{name} must be "user:password" or "user1:password1,user2:password2", passwords at least 12 characters '
            f"without commas or whitespace{' (or empty: no login)' if optional else ''}. Set it from Ansible Vault, e.g. "
            f'{name}: "{user}:{{{{ vault_{name.rsplit("_basic_auth", 1)[0]}_password }}}}".']


def flower(v: dict, ctx: dict) -> list[str]:
    errors = login_list_errors("flower_basic_auth", v.get("flower_basic_auth"))
    cert, key = str(v.get("flower_tls_cert_file") or ""), str(v.get("flower_tls_key_file") or "")
    if not port(v.get("flower_port")) or not str(v.get("flower_bind_address") or "") or bool(cert) != bool(key):
        errors.append(f"Invalid Flower settings, flower_port={v.get('flower_port')} (1-65535), flower_bind_address="
                      f'{v.get("flower_bind_address")}, flower_tls_cert_file="{cert}" and flower_tls_key_file="{key}" (both or neither).')
    return errors


def prometheus(v: dict, ctx: dict) -> list[str]:
    errors = []
    if (not str(v.get("prometheus_address") or "") or not port(v.get("prometheus_port"))
            or not re.fullmatch(r"[0-9]+(ms|s|m|h)", str(v.get("prometheus_scrape_interval")))
            or not re.fullmatch(r"[0-9]+(h|d|w|y)", str(v.get("prometheus_retention_time")))):
        errors.append(f'Invalid Prometheus settings: prometheus_address="{v.get("prometheus_address") or ""}" (empty: this host '
                      f"has no default IPv4 route, set it), prometheus_port={v.get('prometheus_port')} (1-65535), "
                      f"prometheus_scrape_interval={v.get('prometheus_scrape_interval')} (e.g. 15s), "
                      f"prometheus_retention_time={v.get('prometheus_retention_time')} (e.g. 15d).")
    errors += login_list_errors("prometheus_basic_auth", v.get("prometheus_basic_auth"))
    tls = [str(v.get(f"prometheus_tls_{name}_file") or "") for name in ("cert", "key", "ca")]
    if any(tls) and not all(tls):
        errors.append(f'prometheus_tls_cert_file="{tls[0]}", prometheus_tls_key_file="{tls[1]}" and prometheus_tls_ca_file='
                      f'"{tls[2]}": all three (HTTPS) or none (plain HTTP).')
    targets = v.get("prometheus_targets") or []
    jobs = [str(target.get("job")) for target in targets]
    with_password = sorted(str(t.get("job")) for t in targets if t.get("password"))
    with_user = sorted(str(t.get("job")) for t in targets if t.get("username"))
    if (len(set(jobs)) != len(jobs) or [job for job in jobs if not re.fullmatch(r"[A-Za-z0-9_-]+", job)]
            or set(jobs) & {"prometheus", "airflow"} or [t for t in targets if t.get("targets") == []]
            or [t for t in targets if t.get("scheme") is not None and t.get("scheme") not in ("http", "https")]
            or with_password != with_user):
        errors.append('prometheus_targets: every job needs a unique name of letters, digits, - and _, other than "prometheus" '
                      'and "airflow" (the role\'s own), and at least one target, scheme is http or https, and username and '
                      f"password come together (jobs: {', '.join(jobs)}).")
    if v.get("prometheus_statsd_receiver") and not port(v.get("prometheus_statsd_port")):
        errors.append(f"prometheus_statsd_port={v.get('prometheus_statsd_port')} must be 1-65535.")
    days = whole(v.get("prometheus_certificate_warning_days", 14))
    if days is None or days < 1:
        errors.append(f"prometheus_certificate_warning_days={v.get('prometheus_certificate_warning_days')} must be a number of "
                      "days, 1 or more.")
    unnamed = [c for c in v.get("prometheus_certificates") or [] if not str(c.get("host") or "").strip()
               or not str(c.get("service") or "").strip() or (whole(c.get("not_after")) or 0) < 1]
    if unnamed:
        errors.append(f"prometheus_certificates: each entry needs a host, a service and not_after (seconds since the epoch); "
                      f"not so: {', '.join(sorted(str(c) for c in unnamed))}.")
    return errors


def firewall(v: dict, ctx: dict) -> list[str]:
    errors = []
    host = ctx.get("host", "this host")
    rules = v.get("firewall_rules") or []
    ports = [rule.get("port") for rule in rules]
    bad = [source for rule in rules for source in not_networks(rule.get("sources"))]
    if [p for p in ports if not port(p)] or bad:
        errors.append(f"firewall_rules on {host}: every port must be 1-65535 (got {', '.join(str(p) for p in ports)}) and every "
                      f"source an IPv4/IPv6 address or CIDR (not valid: {', '.join(repr(s) if s != s.strip() else s for s in bad)}).")
    ssh = int(ctx.get("ssh_port", 22))
    filtered = [str(rule.get("name")) for rule in rules if whole(rule.get("port")) == ssh]
    if filtered:
        errors.append(f"firewall_rules on {host} would filter port {ssh}, the SSH port this run connects through "
                      f"({', '.join(filtered)}): move that service to another port.")
    return errors


def api_balancer(v: dict, ctx: dict) -> list[str]:
    errors = []
    host = ctx.get("host", "this host")
    servers = v.get("api_balancer_servers") or []
    bad = [str(server.get("name")) for server in servers
           if not port(server.get("port"))
           or not re.fullmatch(r"[A-Za-z0-9.:-]+", str(server.get("address") or ""))
           or not re.fullmatch(r"[A-Za-z0-9._-]+", str(server.get("name") or ""))]
    if bad:
        errors.append(f"api_balancer_servers on {host}: each api server needs a name (letters, digits, '.', '_', '-'), an "
                      f"address (an IP address or host name) and a port 1-65535; not valid: {', '.join(bad)}.")
    names = [str(server.get("name")) for server in servers]
    if len(set(names)) != len(names):
        errors.append(f"api_balancer_servers on {host} names an api server twice: {', '.join(sorted(set(n for n in names if names.count(n) > 1)))}.")
    if not port(v.get("api_balancer_port")):
        errors.append(f"api_balancer_port={v.get('api_balancer_port')} on {host} must be a port 1-65535.")
    for name in ("api_balancer_check_interval", "api_balancer_fall", "api_balancer_rise"):
        if (whole(v.get(name)) or 0) < 1:
            errors.append(f"{name}={v.get(name)} on {host} must be a whole number, 1 or more.")
    return errors


def airflow_common(v: dict, ctx: dict) -> list[str]:
    """The shared Airflow inputs (airflow_inputs.py); ctx carries the caller's components, their needs,
    the secrets behind them, and what the action plugin found on the host and the controller."""
    keys = ("components", "needs", "need_secrets", "python_minor", "architecture", "lock_exists", "lock_extras",
            "dags_src_is_dir", "uv_lock_exists")
    return airflow_inputs.check(v, airflow_inputs.Context(ctx.get("host", "this host"), **{k: ctx[k] for k in keys if k in ctx}))


CHECKS = {"_airflow_common": airflow_common, "api_balancer": api_balancer, "redis": redis, "postgresql": postgresql, "worker": worker,
          "flower": flower, "prometheus": prometheus, "firewall": firewall}


def check(role: str, values: dict, ctx: dict) -> list[str]:
    """Every problem of a role's inputs on a host: line breaks in any of them, then the role's own checks."""
    return line_break_errors(values, ctx.get("host", "this host")) + CHECKS[role](values, ctx)
