# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The cluster plan: what site.yml gives every host, computed once on the controller.

Pure Python, no Ansible: `plan(inventory, roles)` takes the inventory's groups, each host's address
and the few host variables the cluster rules read, and returns for every host its roles, its
Airflow components, its firewall rules, the secrets it must have and the names on its certificate;
for the cluster the endpoints every client uses (broker, metadata database, result backend, api
server, StatsD), the clients PostgreSQL admits and its max_connections, and Prometheus's targets.
Every error in the inventory comes back as one message naming the host, the variable and what is
accepted. The plan carries the names of secrets, never their values: where two secrets must be
equal the caller passes digests.

The action plugin `airflow_ops.celery.cluster_plan` reads the inventory into this shape; the unit
tests in tests/unit/test_cluster_plan.py call `plan()` with dicts.
"""

from __future__ import annotations

import ipaddress
import re

try:  # as the collection's plugin_utils under Ansible, or beside this file in the unit tests
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import db_budget, redis_acl, web_auth
except ImportError:
    import db_budget
    import redis_acl
    import web_auth

# What the database host served before this run (site.yml finds out): nothing yet, clients connecting to
# PostgreSQL itself (a cluster set up before PgBouncer), or through PgBouncer.
DATABASE_BEFORE = ("new", "direct", "pooled")
GROUPS = ("redis", "postgresql", "scheduler", "api_server", "workers", "flower", "monitoring")
CONTROL_PLANE_COMPONENTS = ("scheduler", "dag-processor", "triggerer")

# Cluster-wide settings (set once, e.g. in group_vars/all) and their defaults.
CLUSTER_DEFAULTS = {
    "site_api_server_host": None,
    "site_postgresql_extra_clients": [],
    "site_postgresql_max_connections": None,
    "site_pgbouncer": True,
    "site_pgbouncer_max_client_conn": None,
    "site_worker_batch": 1,
    "site_allow_colocated_workers": False,
    "site_tls": True,
    "site_firewall": True,
    "site_admin_networks": [],
    "site_worker_networks": [],
    "site_tls_cert": None,
    "site_tls_key": None,
    "site_tls_ca_cert": None,
    "site_tls_ca_key": None,
    "site_tls_days": 365,
    "site_tls_renew_days": 30,
    "site_tls_extra_names": [],
}

# The roles' inputs the cluster rules read, each with the role whose argument spec holds its
# default (and which runs where the value matters).
ROLE_INPUTS = {
    "redis_port": "redis",
    "redis_exporter_port": "redis",
    "redis_sentinel_port": "redis",
    "redis_sentinel_master_name": "redis",
    "postgresql_port": "postgresql",
    "postgresql_pgbouncer_port": "postgresql",
    "postgresql_exporter_port": "postgresql",
    "postgresql_airflow_database": "postgresql",
    "postgresql_airflow_user": "postgresql",
    "postgresql_result_backend_database": "postgresql",
    "postgresql_result_backend_user": "postgresql",
    "airflow_api_server_port": "_airflow_common",
    "airflow_api_server_workers": "_airflow_common",
    "airflow_worker_log_server_port": "_airflow_common",
    "airflow_triggerer_log_server_port": "_airflow_common",
    "api_balancer_port": "api_balancer",
    "worker_concurrency": "worker",
    "flower_port": "flower",
    "prometheus_port": "prometheus",
    "prometheus_statsd_receiver": "prometheus",
    "prometheus_statsd_port": "prometheus",
}
PORT_INPUTS = {name for name in ROLE_INPUTS if name.endswith("_port")}
COUNT_INPUTS = {"airflow_api_server_workers", "worker_concurrency"}
IDENTIFIER_INPUTS = {"postgresql_airflow_database", "postgresql_airflow_user",
                     "postgresql_result_backend_database", "postgresql_result_backend_user"}

# What the Airflow hosts take from the broker's and the database's own settings: an inventory must
# not set the airflow_* copy to something else. (input, owner group, the owner's setting)
DERIVED_INPUTS = (
    ("airflow_redis_port", "redis", "redis_port"),
    ("airflow_redis_password", "redis", "redis_password"),
    ("airflow_database_port", "postgresql", "postgresql_port"),
    ("airflow_database_name", "postgresql", "postgresql_airflow_database"),
    ("airflow_database_user", "postgresql", "postgresql_airflow_user"),
    ("airflow_database_password", "postgresql", "postgresql_airflow_password"),
    ("airflow_result_backend_name", "postgresql", "postgresql_result_backend_database"),
    ("airflow_result_backend_user", "postgresql", "postgresql_result_backend_user"),
    ("airflow_result_backend_password", "postgresql", "postgresql_result_backend_password"),
)
# What site.yml sets on each Airflow host from the plan alone: an inventory must not set it otherwise.
PLANNED_INPUTS = ("airflow_redis_user",)
# The Airflow secrets that derive from a setting of the broker or database host: that host holds them.
SECRET_SOURCES = {derived: (group, source) for derived, group, source in DERIVED_INPUTS if "password" in derived}

WORKER_BATCH = re.compile(r"([1-9][0-9]*|([1-9][0-9]?|100)%)\Z")
VAULT_EXAMPLE = 'Put the secret in Ansible Vault and reference it from group_vars, as inventories/prod/group_vars/all/ does (e.g. {0}: "{{{{ vault_{0} }}}}").'


class PlanError(Exception):
    """The inventory cannot be planned; .errors lists every reason."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def unique(items):
    """The items in order, each once."""
    seen, kept = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            kept.append(item)
    return kept


def as_bool(value) -> bool:
    """A YAML or string boolean as Ansible's `bool` filter reads it."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
    return bool(value)


def network_errors(variable: str, values) -> list[str]:
    """Each entry must be one IPv4/IPv6 address or network (CIDR), nothing around it."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        return [f"{variable} must be a list of IPv4/IPv6 addresses or CIDRs, not {values!r}."]
    bad = []
    for value in values:
        try:
            if not isinstance(value, str) or value != value.strip():
                raise ValueError(value)
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            bad.append(repr(value) if isinstance(value, str) and value != value.strip() else str(value))
    return [f"{variable} must list IPv4/IPv6 addresses or CIDRs, not: {', '.join(bad)}."] if bad else []


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Inventory:
    """The planner's view of the inventory.

    data = {
        "groups": {group: [host, ...]},
        "hosts": {host: {"address": str | None, "vars": {name: value},
                         "secrets": {name: digest or None (unset)}}},
        "play_hosts": [host, ...],   # the hosts of this run (--limit); default: all
    }
    roles = {role: {input: default}} (the roles' argument specs' defaults),
            plus "component_needs" and "need_secrets" (roles/_airflow_common/vars/main.yml)
    """

    def __init__(self, data: dict, roles: dict):
        self.groups = {group: list(data.get("groups", {}).get(group) or []) for group in GROUPS}
        self.hosts = data.get("hosts", {})
        self.play_hosts = list(data.get("play_hosts") or self.members())
        self.roles = roles
        self.errors: list[str] = []

    def members(self) -> list[str]:
        return unique(host for group in GROUPS for host in self.groups[group])

    def raw(self, host: str, name: str, default=None):
        return self.hosts.get(host, {}).get("vars", {}).get(name, default)

    def address(self, host: str) -> str | None:
        return self.hosts.get(host, {}).get("address")

    def role_default(self, name: str):
        return self.roles["defaults"][ROLE_INPUTS[name]].get(name)

    def get(self, host: str, name: str):
        """A role input of a host as the role sees it: the inventory's value or the role's default,
        checked for its kind; a bad value adds an error and gives the default."""
        value = self.raw(host, name, self.role_default(name))
        if name in PORT_INPUTS or name in COUNT_INPUTS:
            try:
                number = int(str(value).strip()) if not isinstance(value, bool) else None
            except ValueError:
                number = None
            low, high, what = (1, 65535, "a port (1-65535)") if name in PORT_INPUTS else (1, 10000, "a whole number from 1")
            if number is None or not low <= number <= high:
                self.errors.append(f"{host}: {name}={value} must be {what}.")
                return self.role_default(name)
            return number
        if name in IDENTIFIER_INPUTS and not re.fullmatch(r"[a-z_][a-z0-9_]*", str(value)):
            # The postgresql role's preflight says what it accepts; here only stop a bad name spreading.
            self.errors.append(f"{host}: {name}={value} must be a lower-case identifier ([a-z_][a-z0-9_]*).")
            return self.role_default(name)
        if name == "prometheus_statsd_receiver":
            return as_bool(value)
        return value


def cluster_settings(inv: Inventory) -> dict:
    """site_* settings, which must be the same for every host; defaults where unset."""
    settings = {}
    members = inv.members()
    for name, default in CLUSTER_DEFAULTS.items():
        values = {}
        for host in members:
            values.setdefault(repr(inv.raw(host, name, default)), []).append(host)
        if len(values) > 1:
            spread = "; ".join(f"{value} on {', '.join(hosts)}" for value, hosts in values.items())
            inv.errors.append(f"{name} differs between hosts ({spread}): it is a cluster setting, set it once for all "
                              "hosts (group_vars/all).")
        settings[name] = inv.raw(members[0], name, default) if members else default
    for name in ("site_tls", "site_firewall", "site_allow_colocated_workers", "site_pgbouncer"):
        settings[name] = as_bool(settings[name])
    return settings


def check_groups(inv: Inventory) -> None:
    sizes = {group: len(inv.groups[group]) for group in GROUPS}
    if (not (sizes["redis"] == 1 or sizes["redis"] >= 3) or sizes["postgresql"] != 1 or not sizes["scheduler"]
            or not sizes["api_server"] or not sizes["workers"] or sizes["monitoring"] > 1):
        inv.errors.append(
            f"The inventory needs one host in `redis`, or three or more under Redis Sentinel (has {sizes['redis']}; two "
            f"cannot elect a new primary when one is lost), exactly one in `postgresql` (has "
            f"{sizes['postgresql']}), and at least one in `scheduler` ({sizes['scheduler']}), `api_server` "
            f"({sizes['api_server']}) and `workers` ({sizes['workers']}); at most one in `monitoring` "
            f"({sizes['monitoring']}). See inventories/prod/hosts.yml.")


# Settings of the broker hosts that must be the same on each of them (Sentinel's group shares them).
REDIS_GROUP_INPUTS = ("redis_port", "redis_sentinel_port", "redis_sentinel_master_name")


def check_data_groups(inv: Inventory) -> None:
    """The hosts of `redis` (and `postgresql`) must run one distribution release: a replica must load
    its primary's data (a Redis 8 RDB does not load on Redis 7; PostgreSQL 15 and 17 cannot stream to
    each other). And a Sentinel group shares its port, Sentinel port and primary's name."""
    for group, package in (("redis", "Redis"), ("postgresql", "PostgreSQL")):
        members = inv.groups[group]
        releases: dict[str, list[str]] = {}
        for host in members:
            releases.setdefault(inv.hosts.get(host, {}).get("release") or "unknown", []).append(host)
        if len(members) > 1 and len(releases) > 1:
            spread = "; ".join(f"{release} on {', '.join(hosts)}" for release, hosts in releases.items())
            inv.errors.append(f"The `{group}` hosts run different releases ({spread}): each ships its own {package}, and a "
                              f"replica must load its primary's data. Put hosts of one release into `{group}`.")
    if len(inv.groups["redis"]) > 1:
        for name in REDIS_GROUP_INPUTS + ("redis_password",):
            values = {}
            for host in inv.groups["redis"]:
                value = (inv.hosts.get(host, {}).get("secrets", {}).get(name) if name == "redis_password"
                         else repr(inv.get(host, name)))
                values.setdefault(value, []).append(host)
            if len(values) > 1:
                spread = "; ".join(", ".join(hosts) for hosts in values.values())
                inv.errors.append(f"{name} differs between the `redis` hosts (the same value on each of: {spread}): the "
                                  "replicas and Sentinels of one broker share it. Set it once, in group_vars/redis.")


def check_cluster_settings(inv: Inventory, settings: dict) -> None:
    errors = inv.errors
    for name in ("site_admin_networks", "site_worker_networks", "site_postgresql_extra_clients"):
        errors.extend(network_errors(name, settings[name]))
    for name in ("site_tls_extra_names",):
        names = settings[name]
        if not isinstance(names, list) or [n for n in names if not re.fullmatch(r"(DNS|IP):[^\s,]+", str(n))]:
            errors.append(f"{name} must list subject alternative names as DNS:<name> or IP:<address>, not {names!r}.")
    if not WORKER_BATCH.match(str(settings["site_worker_batch"])):
        errors.append(f"site_worker_batch={settings['site_worker_batch']} must be a number of workers (1 or more) or a "
                      "percentage (1%-100%): how many workers restart at a time.")
    if settings["site_tls_cert"] is not None and (settings["site_tls_key"] is None or settings["site_tls_ca_cert"] is None):
        errors.append("site_tls_cert needs site_tls_key (its key) and site_tls_ca_cert (the CA that signed it).")
    if settings["site_tls_ca_key"] is not None and settings["site_tls_ca_cert"] is None:
        errors.append("site_tls_ca_key needs site_tls_ca_cert (the CA certificate of that key).")
    try:
        days, renew = int(settings["site_tls_days"]), int(settings["site_tls_renew_days"])
    except (TypeError, ValueError):
        days, renew = 0, 0
    if not days > renew > 0:
        errors.append(f"site_tls_days ({settings['site_tls_days']}) must be more than site_tls_renew_days "
                      f"({settings['site_tls_renew_days']}), and that more than 0.")
    api_host = settings["site_api_server_host"]
    if api_host is not None:
        text = str(api_host).strip().lower()
        local = text in ("", "localhost") or text.startswith("localhost.")
        if is_ip(text):
            local = ipaddress.ip_address(text).is_loopback or ipaddress.ip_address(text).is_unspecified
        if local or text != str(api_host) or not re.fullmatch(r"[A-Za-z0-9.:-]+", str(api_host)):
            errors.append(f"site_api_server_host={api_host} must be an address or name every worker reaches the api "
                          "server at (e.g. a load balancer), never localhost, a loopback or 0.0.0.0.")
    for name, low in (("site_postgresql_max_connections", 20), ("site_pgbouncer_max_client_conn", 10)):
        value = settings[name]
        if value is None:
            continue
        try:
            valid = not isinstance(value, bool) and int(str(value)) >= low
        except ValueError:
            valid = False
        if not valid:
            errors.append(f"{name}={value} must be a whole number of at least {low}.")
            settings[name] = None
    if settings["site_pgbouncer_max_client_conn"] is not None and not settings["site_pgbouncer"]:
        errors.append("site_pgbouncer_max_client_conn is set but site_pgbouncer is false: without PgBouncer there is no "
                      "client limit of its own; remove the setting or turn site_pgbouncer on.")


# Groups whose hosts hold what task code must not read: the database's superuser and data, the
# control plane's secrets (metadata login, Fernet key, JWT secret) in the airflow.cfg the worker's
# own user reads.
NO_WORKERS_WITH = ("postgresql", "scheduler", "api_server")


def check_colocated_workers(inv: Inventory, settings: dict) -> None:
    """A worker runs untrusted task code as `airflow`: on a database or control-plane host that code
    could read their secrets. Refused unless site_allow_colocated_workers says the user accepts it."""
    if settings["site_allow_colocated_workers"]:
        return
    for host in inv.groups["workers"]:
        shared = [f"`{group}`" for group in NO_WORKERS_WITH if host in inv.groups[group]]
        if shared:
            inv.errors.append(
                f"{host} is in `workers` and in {' and '.join(shared)}: task code on a worker runs as `airflow` and "
                "could read that host's secrets (the metadata database's login, the Fernet key, the JWT secret) or its "
                "database. Give the workers hosts of their own, or set site_allow_colocated_workers: true to accept it "
                "(a single-host test box).")


def api_balanced(inv: Inventory, settings: dict) -> bool:
    """Whether the workers reach the api servers through a balancer of their own (HAProxy on each
    worker host): two or more api servers, and no load balancer of the user's (site_api_server_host)."""
    return len(inv.groups["api_server"]) > 1 and not settings["site_api_server_host"]


def host_roles(inv: Inventory, host: str, settings: dict) -> list[str]:
    """The roles a host runs, by its groups, in the order site.yml applies them."""
    groups = {group for group in GROUPS if host in inv.groups[group]}
    airflow = groups & {"scheduler", "api_server", "workers", "flower"}
    return ([role for role, group in (("redis", "redis"), ("postgresql", "postgresql")) if group in groups]
            + (["_airflow_common"] if airflow else [])
            + (["airflow"] if groups & {"scheduler", "api_server"} else [])
            + (["api_balancer"] if "workers" in groups and api_balanced(inv, settings) else [])
            + (["worker"] if "workers" in groups else [])
            + (["flower"] if "flower" in groups else [])
            + (["prometheus"] if "monitoring" in groups else [])
            + (["firewall"] if settings["site_firewall"] else []))


def control_plane_components(inv: Inventory, host: str) -> list[str]:
    return ((list(CONTROL_PLANE_COMPONENTS) if host in inv.groups["scheduler"] else [])
            + (["api-server"] if host in inv.groups["api_server"] else []))


def host_components(inv: Inventory, host: str) -> list[str]:
    """Every Airflow component of a host: its airflow.cfg holds their secrets and no others."""
    return (control_plane_components(inv, host) + (["worker"] if host in inv.groups["workers"] else [])
            + (["flower"] if host in inv.groups["flower"] else []))


def host_secrets(inv: Inventory, host: str, roles: list[str], components: list[str]) -> list[str]:
    """The secret inputs a host must have: the required secrets of its roles' specs, and the shared
    Airflow secrets its components need (a worker gets no control-plane secret)."""
    names = [name for role in roles for name in inv.roles["secrets"].get(role, [])]
    needs = unique(need for component in components for need in inv.roles["component_needs"][component])
    return unique(names + [name for need in needs for name in inv.roles["need_secrets"][need]])


def check_secrets(inv: Inventory, host_plans: dict) -> None:
    """A secret a host needs must be set there (a reference to an undefined vault variable is not);
    the airflow_* copies of the broker's and database's secrets are checked on the host that owns them."""
    reported = set()
    for host, host_plan in host_plans.items():
        for name in host_plan["secrets"]:
            owner, source = host, name
            if name in SECRET_SOURCES:
                group, source = SECRET_SOURCES[name]
                owner = inv.groups[group][0]
            if (owner, source) in reported:
                continue
            if inv.hosts.get(owner, {}).get("secrets", {}).get(source) is None:
                reported.add((owner, source))
                if owner == host:
                    what = f"{source} is not set for {host}, or refers to a vault variable that is not defined ({host} runs {', '.join(host_plan['roles'])})."
                else:
                    what = f"{source} on {owner} is not set, or refers to a vault variable that is not defined ({host} gets it as {name})."
                inv.errors.append(f"{what} " + VAULT_EXAMPLE.format(source))


def check_derived_inputs(inv: Inventory, airflow_hosts: list[str], derived: dict, pgbouncer: bool = False) -> None:
    """An Airflow host may not set an airflow_* input that site.yml takes from the broker or database."""
    for host in airflow_hosts:
        for name, group, source in DERIVED_INPUTS:
            if name == "airflow_database_port" and pgbouncer:
                source = "postgresql_pgbouncer_port"
            owner = inv.groups[group][0]
            if name in SECRET_SOURCES:
                mine = inv.hosts.get(host, {}).get("secrets", {}).get(name, "__unset__")
                theirs = inv.hosts.get(owner, {}).get("secrets", {}).get(source)
                differs = mine != "__unset__" and mine != theirs
            else:
                mine = inv.raw(host, name, "__unset__")
                differs = mine != "__unset__" and str(mine) != str(derived[name])
            if differs:
                inv.errors.append(f"{name} is set for {host} and differs from {source} on {owner}. site.yml gives every "
                                  "Airflow host the broker's and the database's own settings: set each once, on the redis "
                                  "and postgresql hosts, and remove the airflow_* copy from the inventory.")
        user = redis_acl.broker_user(host_components(inv, host))
        mine = inv.raw(host, "airflow_redis_user", "__unset__")
        if mine != "__unset__" and str(mine) != user:
            inv.errors.append(f"airflow_redis_user is set for {host} to {mine!r}; site.yml logs its "
                              f"{', '.join(host_components(inv, host)) or 'no'} component(s) in to the broker as "
                              f"{user!r} (plugins/plugin_utils/redis_acl.py). Remove airflow_redis_user from the inventory.")


def check_dag_bundles(inv: Inventory, cloning_hosts: list[str]) -> None:
    """The dag-processors (scheduler hosts) and the workers must list the same DAG bundles with the same
    credentials: a run records the bundle version its DAG was parsed from, and each worker fetches that
    version itself. The action plugin passes each host's airflow_dag_bundles with digests for credentials."""
    lists = {}
    for host in cloning_hosts:
        # unset and [] are the role default alike
        lists.setdefault(repr(inv.raw(host, "airflow_dag_bundles") or []), []).append(host)
    if len(lists) > 1:
        def names(host):
            value = inv.raw(host, "airflow_dag_bundles")
            if not value or not isinstance(value, list):
                return "the role default"
            return ", ".join(str(bundle.get("name")) if isinstance(bundle, dict) else "?" for bundle in value) or "none"
        spread = "; ".join(f"[{names(hosts[0])}] on {', '.join(hosts)}" for hosts in lists.values())
        inv.errors.append(f"airflow_dag_bundles differs between the scheduler and worker hosts ({spread}; the same names "
                          "with other settings or credentials count as different): each worker fetches the bundle version "
                          "a run was parsed from, so they must list the same bundles with the same credentials. Set it "
                          "once, in group_vars/all.")


def listen_ports(inv: Inventory, host: str, monitoring: bool, pgbouncer: bool = False) -> list[tuple[str, int]]:
    """(input, port) of every service a host listens on, from its own settings."""
    ports = []
    if host in inv.groups["redis"]:
        ports.append(("redis_port", inv.get(host, "redis_port")))
    if host in inv.groups["postgresql"]:
        ports.append(("postgresql_port", inv.get(host, "postgresql_port")))
        if pgbouncer:
            ports.append(("postgresql_pgbouncer_port", inv.get(host, "postgresql_pgbouncer_port")))
    if host in inv.groups["redis"] and len(inv.groups["redis"]) >= 3:
        ports.append(("redis_sentinel_port", inv.get(host, "redis_sentinel_port")))
    if monitoring and host in inv.groups["redis"]:
        ports.append(("redis_exporter_port", inv.get(host, "redis_exporter_port")))
    if monitoring and host in inv.groups["postgresql"]:
        ports.append(("postgresql_exporter_port", inv.get(host, "postgresql_exporter_port")))
    if host in inv.groups["api_server"]:
        ports.append(("airflow_api_server_port", inv.get(host, "airflow_api_server_port")))
    if host in inv.groups["scheduler"]:
        ports.append(("airflow_triggerer_log_server_port", inv.get(host, "airflow_triggerer_log_server_port")))
    if host in inv.groups["workers"]:
        ports.append(("airflow_worker_log_server_port", inv.get(host, "airflow_worker_log_server_port")))
    if host in inv.groups["flower"]:
        ports.append(("flower_port", inv.get(host, "flower_port")))
    if host in inv.groups["monitoring"]:
        ports.append(("prometheus_port", inv.get(host, "prometheus_port")))
    return ports


def check_port_clashes(inv: Inventory, host: str, ports: list[tuple[str, int]]) -> None:
    claims: dict[int, list[str]] = {}
    for name, port in ports:
        claims.setdefault(port, []).append(name)
    clashes = [f"{' and '.join(names)} are all {port}" for port, names in claims.items() if len(names) > 1]
    if clashes:
        inv.errors.append(f"{host}: {'; '.join(clashes)}; give each service its own port.")


def tls_names(host: str, address: str | None, extra: list[str]) -> list[str]:
    """The names a host's certificate holds: its inventory name, its address (what the others
    connect to), loopback, and site_tls_extra_names."""
    names = [("IP:" if is_ip(host) else "DNS:") + host]
    if address and address != host:
        names.append("IP:" + address)
    return names + ["DNS:localhost", "IP:127.0.0.1"] + list(extra)


# The TLS servers, by the port input that places a service on a host, and where their key and
# certificate are on that host.
TLS_SERVERS = {"redis_port": "redis", "redis_sentinel_port": "redis", "postgresql_port": "postgresql", "airflow_api_server_port": "api_server",
               "flower_port": "flower", "postgresql_exporter_port": "postgresql_exporter", "prometheus_port": "prometheus"}
TLS_DIR = "/etc/airflow-ops/tls"


def tls_files(ports: list[tuple[str, int]], settings: dict) -> dict:
    """The certificates a host's TLS servers present. "services": those whose key and certificate
    the host makes and the controller signs; "files": {service: {"cert": path, "key": path}} for
    every TLS server kind, "" where the host runs none; "unused": the files in TLS_DIR that no
    service of the host reads any more (a service it left, the host-wide pair of earlier versions).
    Each service has a key of its own (<service>.key, 0600 root; its role copies it for its user
    alone), so a service that gives its key away does not give away another's. With site_tls_cert,
    the one certificate and key given for the host serve all."""
    def pair(name: str) -> dict:
        return {"cert": f"{TLS_DIR}/{name}.crt", "key": f"{TLS_DIR}/{name}.key"}

    given = settings["site_tls_cert"] is not None
    served = unique([TLS_SERVERS[name] for name, _port in ports if name in TLS_SERVERS]) if settings["site_tls"] else []
    files = {service: pair("host" if given else service) if service in served else {"cert": "", "key": ""}
             for service in unique(TLS_SERVERS.values())}
    stale = [service for service in unique(TLS_SERVERS.values()) if given or service not in served] + ([] if given else ["host"])
    return {"services": [] if given else served, "files": files,
            "unused": [path for name in stale for path in pair(name).values()]}


def tls_certificates(hosts: dict, monitoring_host: str) -> list[dict]:
    """The certificates Prometheus watches for their expiry (the monitoring host's alert): each TLS
    server's, as {"host", "service", "path"}, and the cluster CA's, read on the monitoring host (every
    host holds a copy). Empty without TLS or without a monitoring host."""
    served = [{"host": host, "service": service, "path": files["cert"]}
              for host, settings in hosts.items() for service, files in settings["tls_files"].items() if files["cert"]]
    if not served or not monitoring_host:
        return []
    return served + [{"host": monitoring_host, "service": "ca", "path": f"{TLS_DIR}/ca.crt"}]


def plan(data: dict, roles: dict) -> dict:
    """The cluster plan; raises PlanError listing every problem of the inventory."""
    inv = Inventory(data, roles)
    check_groups(inv)
    if inv.errors:  # nothing else can be placed
        raise PlanError(inv.errors)
    check_data_groups(inv)
    settings = cluster_settings(inv)
    check_cluster_settings(inv, settings)
    check_colocated_workers(inv, settings)

    groups = inv.groups
    redis_host, postgresql_host = groups["redis"][0], groups["postgresql"][0]
    monitoring_host = groups["monitoring"][0] if groups["monitoring"] else ""
    control_plane = unique(groups["scheduler"] + groups["api_server"])
    airflow_hosts = unique(groups["scheduler"] + groups["api_server"] + groups["workers"] + groups["flower"])

    # Addresses: every host whose address a rule or endpoint names must have one.
    needed = unique(groups["redis"] + [postgresql_host] + groups["api_server"] + groups["monitoring"]
                    + (groups["flower"] if monitoring_host else [])
                    + (airflow_hosts if settings["site_firewall"] else []))
    unaddressed = [host for host in needed if not inv.address(host)]
    if unaddressed:
        inv.errors.append(f"{', '.join(unaddressed)} have no default IPv4 address (ansible_facts.default_ipv4), which "
                          "site.yml gives the other hosts as the address of their broker, database and api server. "
                          "Give them a default route.")
    for host in inv.members():
        address = inv.address(host)
        if address and not is_ip(address):
            inv.errors.append(f"{host}: its address {address!r} is not an IPv4/IPv6 address.")

    def addresses(hosts):
        return [inv.address(host) for host in hosts if inv.address(host)]

    def redis_peers(host):
        return addresses([peer for peer in groups["redis"] if peer != host])

    pgbouncer = settings["site_pgbouncer"]
    # The broker: one Redis, or (three or more hosts) Redis Sentinel on each, which the clients ask where
    # the primary is. site.yml reads the broker's secrets on `host`, the first (each holds the same).
    sentinel = len(groups["redis"]) >= 3
    broker = {"host": redis_host, "address": inv.address(redis_host), "port": inv.get(redis_host, "redis_port"),
              "sentinel": sentinel,
              "hosts": [{"name": host, "address": inv.address(host)} for host in groups["redis"]] if sentinel else [],
              "sentinels": [endpoint(inv.address(host), inv.get(host, "redis_sentinel_port"))
                            for host in groups["redis"]] if sentinel else [],
              "master_name": inv.get(redis_host, "redis_sentinel_master_name")}
    # What the Airflow hosts connect to: PgBouncer beside PostgreSQL (site_pgbouncer, the default), or
    # PostgreSQL itself. The migration always goes to PostgreSQL itself (direct_port): it holds
    # session-level advisory locks, which a transaction pooler cannot keep.
    postgresql_port = inv.get(postgresql_host, "postgresql_port")
    endpoint_port = inv.get(postgresql_host, "postgresql_pgbouncer_port") if pgbouncer else postgresql_port
    database = {"host": postgresql_host, "address": inv.address(postgresql_host), "port": endpoint_port,
                "direct_port": postgresql_port,
                "name": inv.get(postgresql_host, "postgresql_airflow_database"),
                "user": inv.get(postgresql_host, "postgresql_airflow_user")}
    result_backend = {"host": postgresql_host, "address": database["address"], "port": endpoint_port,
                      "name": inv.get(postgresql_host, "postgresql_result_backend_database"),
                      "user": inv.get(postgresql_host, "postgresql_result_backend_user")}
    # The execution API: the first api server, or the user's load balancer (site_api_server_host); with
    # two or more api servers and none of the user's, each worker's own HAProxy (loopback) in front of
    # all of them, which checks their health and sends a worker's calls to those that answer.
    balanced = api_balanced(inv, settings)
    api_server = {"host": groups["api_server"][0],
                  "address": settings["site_api_server_host"] or inv.address(groups["api_server"][0]),
                  "port": inv.get(groups["api_server"][0], "airflow_api_server_port"),
                  "balanced": balanced,
                  "servers": [{"name": host, "address": inv.address(host), "port": inv.get(host, "airflow_api_server_port")}
                              for host in groups["api_server"]]}
    statsd_receiver = bool(monitoring_host) and inv.get(monitoring_host, "prometheus_statsd_receiver")
    statsd_port = inv.get(monitoring_host, "prometheus_statsd_port") if monitoring_host else inv.role_default("prometheus_statsd_port")
    statsd = {"host": inv.address(monitoring_host) if statsd_receiver else "", "port": statsd_port}
    derived = {"airflow_redis_port": broker["port"], "airflow_database_port": database["port"],
               "airflow_database_name": database["name"], "airflow_database_user": database["user"],
               "airflow_result_backend_name": result_backend["name"], "airflow_result_backend_user": result_backend["user"]}
    check_derived_inputs(inv, airflow_hosts, derived, pgbouncer)
    check_dag_bundles(inv, unique(groups["scheduler"] + groups["workers"]))

    worker_networks = list(settings["site_worker_networks"] or [])
    admin_networks = list(settings["site_admin_networks"] or [])
    # Who may log in, and where: with PgBouncer, the clients below reach the pooler, and PostgreSQL
    # itself admits from other hosts only the first scheduler host (which migrates) to the metadata.
    # A cluster that ran without PgBouncer keeps admitting every client directly for the run that
    # moves them (their airflow.cfg changes in the Airflow plays, after the database's rules).
    postgresql = {
        "airflow_clients": addresses(control_plane),
        "result_backend_clients": unique(addresses(unique(groups["scheduler"] + groups["workers"]))
                                         + list(settings["site_postgresql_extra_clients"] or []) + worker_networks),
    }
    # Turned off on a cluster that ran it, PgBouncer keeps serving (and the firewall keeps its port
    # open) until the clients left it: site.yml stops it in its last play.
    before = data.get("database_before")
    moving = pgbouncer and before == "direct"
    leaving = not pgbouncer and before == "pooled"
    postgresql["direct_clients"] = ((unique(postgresql["airflow_clients"] + postgresql["result_backend_clients"]) if moving
                                     else addresses(groups["scheduler"][:1])) if pgbouncer else [])
    postgresql["clients_moving"] = moving
    connections = db_budget.budget(
        {host: {"components": host_components(inv, host),
                "api_workers": inv.get(host, "airflow_api_server_workers") if host in groups["api_server"] else 0,
                "concurrency": inv.get(host, "worker_concurrency") if host in groups["workers"] else 0}
         for host in airflow_hosts},
        pgbouncer, settings["site_postgresql_max_connections"], settings["site_pgbouncer_max_client_conn"])
    inv.errors.extend(connections.pop("errors"))
    postgresql["max_connections"] = connections["max_connections"]
    postgresql["pgbouncer"] = {"enabled": pgbouncer, "port": inv.get(postgresql_host, "postgresql_pgbouncer_port"),
                               "max_client_conn": connections["max_client_conn"],
                               "metadata_pool": connections["pools"].get("metadata", 0),
                               "result_backend_pool": connections["pools"].get("result_backend", 0),
                               "reserve_pool": db_budget.RESERVE_POOL if pgbouncer else 0,
                               "leaving": leaving}

    monitoring_sources = addresses([monitoring_host]) if monitoring_host else []
    airflow_sources = addresses(airflow_hosts) + worker_networks
    exporter_ports = {"redis": inv.get(redis_host, "redis_exporter_port"),
                      "postgresql": inv.get(postgresql_host, "postgresql_exporter_port")}
    prometheus_targets = []
    if monitoring_host:
        prometheus_targets = [{"job": "redis", "targets": [endpoint(inv.address(host), inv.get(host, "redis_exporter_port"))
                                                           for host in groups["redis"]]}]
    # The PostgreSQL exporter's job: over TLS with site_tls, with a login (web_auth.SCRAPE_USER) whose
    # password site.yml derives from the monitoring host's prometheus_basic_auth (a secret, not carried).
    # Debian 12's Redis exporter (1.45) serves neither TLS nor logins: the firewall alone guards it.
    postgresql_target = {}
    if monitoring_host:
        postgresql_target = {"job": "postgresql", "targets": [f"{database['address']}:{exporter_ports['postgresql']}"],
                             "scheme": "https" if settings["site_tls"] else "http", "username": web_auth.SCRAPE_USER}
    # Flower's job needs a login, flower_basic_auth of the first Flower host: a secret, named, not carried.
    flower_target = {}
    if monitoring_host and groups["flower"]:
        flower_target = {
            "job": "flower",
            "targets": [f"{inv.address(host)}:{inv.get(host, 'flower_port')}" for host in groups["flower"]],
            "scheme": "https" if settings["site_tls"] else "http",
        }

    hosts = {}
    for host in inv.members():
        roles_of_host = host_roles(inv, host, settings)
        components = host_components(inv, host)
        ports = listen_ports(inv, host, bool(monitoring_host), pgbouncer or leaving)
        balancer = balanced and host in groups["workers"]
        # HAProxy listens on loopback alone: no firewall rule, but no other service may take its port.
        check_port_clashes(inv, host, ports + ([("api_balancer_port", inv.get(host, "api_balancer_port"))] if balancer else []))
        port_of = dict(ports)
        rules = []
        if "redis_port" in port_of:
            rules.append({"name": "Redis broker: the Airflow hosts" + (" and the other broker hosts (replicas, Sentinels)"
                                                                       if sentinel else ""),
                          "port": port_of["redis_port"], "sources": airflow_sources + (redis_peers(host) if sentinel else [])})
        if "redis_sentinel_port" in port_of:
            rules.append({"name": "Redis Sentinel: the Airflow hosts and the other Sentinels", "port": port_of["redis_sentinel_port"],
                          "sources": airflow_sources + redis_peers(host)})
        clients = unique(postgresql["airflow_clients"] + postgresql["result_backend_clients"])
        if "postgresql_pgbouncer_port" in port_of:
            rules.append({"name": "PgBouncer: the Airflow hosts its hba admits", "port": port_of["postgresql_pgbouncer_port"],
                          "sources": clients})
        if "postgresql_port" in port_of:
            rules.append({"name": "PostgreSQL: the clients pg_hba admits", "port": port_of["postgresql_port"],
                          "sources": postgresql["direct_clients"] if pgbouncer else clients})
        if "airflow_api_server_port" in port_of:
            rules.append({"name": "api server: the Airflow hosts (execution API) and site_admin_networks (UI, REST API)",
                          "port": port_of["airflow_api_server_port"], "sources": airflow_sources + admin_networks})
        if "airflow_worker_log_server_port" in port_of:
            rules.append({"name": "worker log server: the api servers", "port": port_of["airflow_worker_log_server_port"],
                          "sources": addresses(groups["api_server"])})
        if "airflow_triggerer_log_server_port" in port_of:
            rules.append({"name": "triggerer log server: the api servers", "port": port_of["airflow_triggerer_log_server_port"],
                          "sources": addresses(groups["api_server"])})
        if "flower_port" in port_of:
            rules.append({"name": "Flower: site_admin_networks and the monitoring host", "port": port_of["flower_port"],
                          "sources": admin_networks + monitoring_sources})
        if "redis_exporter_port" in port_of:
            rules.append({"name": "Redis exporter: the monitoring host", "port": port_of["redis_exporter_port"],
                          "sources": monitoring_sources})
        if "postgresql_exporter_port" in port_of:
            rules.append({"name": "PostgreSQL exporter: the monitoring host", "port": port_of["postgresql_exporter_port"],
                          "sources": monitoring_sources})
        if "prometheus_port" in port_of:
            rules.append({"name": "Prometheus: site_admin_networks", "port": port_of["prometheus_port"], "sources": admin_networks})
            rules.append({"name": "StatsD receiver: the Airflow hosts", "protocol": "udp", "port": statsd["port"],
                          "sources": airflow_sources})
        tls = tls_files(ports, settings)
        hosts[host] = {
            "roles": roles_of_host,
            "components": components,
            "airflow_components": control_plane_components(inv, host),
            "broker_user": redis_acl.broker_user(components),
            "address": inv.address(host),
            "listen": [{"input": name, "port": port} for name, port in ports],
            "firewall_rules": rules,
            "db_clean": bool(groups["scheduler"]) and host == groups["scheduler"][0],
            # Where this host's tasks call the execution API ("": the api server's address and port), and
            # the api servers its HAProxy balances (none: no HAProxy on this host).
            "execution_api_url": (f"{'https' if settings['site_tls'] else 'http'}://127.0.0.1:"
                                  f"{inv.get(host, 'api_balancer_port')}/execution/") if balancer else "",
            "api_balancer_servers": api_server["servers"] if balancer else [],
            # Every broker host under Sentinel (none: a single Redis), on each broker host.
            "redis_replication_hosts": broker["hosts"] if host in groups["redis"] else [],
            "tls_names": tls_names(host, inv.address(host), settings["site_tls_extra_names"] or []),
            "tls_services": tls["services"],
            "tls_files": tls["files"],
            "tls_unused": tls["unused"],
            "secrets": [],
        }
        hosts[host]["secrets"] = host_secrets(inv, host, roles_of_host, components)
    check_secrets(inv, hosts)
    if inv.errors:
        raise PlanError(unique(inv.errors))

    return {
        "tls": settings["site_tls"],
        "firewall": settings["site_firewall"],
        "worker_batch": settings["site_worker_batch"],
        "monitoring": {"host": monitoring_host, "enabled": bool(monitoring_host)},
        "broker": broker,
        "database": database,
        "result_backend": result_backend,
        "api_server": api_server,
        "statsd": statsd,
        "postgresql": postgresql,
        "connections": connections,
        "prometheus_targets": prometheus_targets,
        "prometheus_postgresql_target": postgresql_target,
        "prometheus_flower_target": flower_target,
        "prometheus_flower_login_host": groups["flower"][0] if flower_target else "",
        "tls_certificates": tls_certificates(hosts, monitoring_host),
        "hosts": hosts,
        "notes": security_notes(settings) + limit_notes(inv, settings, hosts) + (
            [f"PgBouncer is new on {postgresql_host}: PostgreSQL keeps admitting the Airflow hosts directly during this run, "
             "while they move to PgBouncer (their airflow.cfg changes after the database's rules); the next site.yml run "
             "admits only the first scheduler host there."] if moving else []) + (
            [f"PgBouncer is turned off on {postgresql_host}: it keeps serving the Airflow hosts until they moved to "
             "PostgreSQL directly, and stops in the run's last play."] if leaving else []),
    }


def endpoint(address: str | None, port) -> str:
    """address:port, an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def covered(address: str | None, networks: list[str]) -> bool:
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


# The settings that admit clients by address or network ahead of the inventory's hosts.
ADMITTING_SETTINGS = ("site_worker_networks", "site_postgresql_extra_clients")


def security_notes(settings: dict) -> list[str]:
    """Warnings for a cluster whose inventory switched TLS or the network policy off (both are on
    unless it does): what that exposes."""
    notes = []
    if not settings["site_tls"]:
        notes.append("site_tls is false: Redis, PostgreSQL, the api server and Flower answer without TLS, so their "
                     "passwords and the task data cross the network in clear text. Remove it to get TLS "
                     "(docs/security.md).")
    if not settings["site_firewall"]:
        notes.append("site_firewall is false: every port of every service is open to every host that reaches the "
                     "cluster's hosts. Remove it to get the network policy (docs/security.md).")
    return notes


def ca_key_notes(key_path: str, passphrase_set: bool, work_tree: str | None, ignored: bool) -> list[str]:
    """A warning when the CA key site.yml makes (or keeps) on the controller is unencrypted and inside
    a git work tree that does not ignore it: one `git add -A` from leaving with the repository."""
    if passphrase_set or not work_tree or ignored:
        return []
    return [f"The cluster CA key {key_path} is not encrypted and lies in the git work tree {work_tree}, which does not "
            "ignore it: whoever gets it can impersonate every host. Set site_tls_ca_passphrase (from Ansible Vault), "
            "git-ignore the directory, or move site_tls_dir out of the repository."]


def limit_notes(inv: Inventory, settings: dict, hosts: dict) -> list[str]:
    """Under --limit: what this run cannot apply because the host that would apply it is outside
    the run (a new worker's address in pg_hba and in the firewall rules of its servers)."""
    outside = [host for host in inv.members() if host not in inv.play_hosts]
    if not outside:
        return []
    notes = []
    admitted_ahead = [network for name in ADMITTING_SETTINGS for network in settings[name] or []]
    for host in inv.play_hosts:
        if host not in inv.groups["workers"] or covered(inv.address(host), admitted_ahead):
            continue
        servers = [inv.groups["postgresql"][0]] + (inv.groups["redis"] + inv.groups["api_server"]
                                                   if settings["site_firewall"] else [])
        missed = [server for server in unique(servers) if server in outside]
        if missed:
            notes.append(f"{host} ({inv.address(host)}) is admitted by {', '.join(missed)} only after site.yml runs there "
                         "(pg_hba, firewall) unless an earlier run already did; list the workers' networks in "
                         "site_worker_networks to admit new workers ahead of time.")
    return notes


def without_workers(data: dict, leaving) -> dict:
    """The planner's view of the inventory once these hosts have left `workers` (decommission): the
    plan of the cluster as it is when they are gone, e.g. the clients PostgreSQL still admits. A
    leaving host keeps its other groups. An entry of site_worker_networks or
    site_postgresql_extra_clients that is exactly a leaving host's address (bare, /32 or /128)
    admitted that host alone: it goes too (leaving_admission says to take it out of the inventory)."""
    leaving = set(leaving or [])
    unknown = sorted(leaving - set(data["groups"].get("workers", [])))
    if unknown:
        raise PlanError([f"{', '.join(unknown)} cannot leave `workers`: not in it."])
    groups = dict(data["groups"], workers=[host for host in data["groups"].get("workers", []) if host not in leaving])
    gone = {data["hosts"][host]["address"] for host in leaving if data["hosts"].get(host, {}).get("address")}
    hosts = {}
    for host, entry in data["hosts"].items():
        own = dict(entry["vars"])
        for name in ADMITTING_SETTINGS:
            if isinstance(own.get(name), list):
                own[name] = [network for network in own[name] if not names_only(network, gone)]
        hosts[host] = dict(entry, vars=own)
    return dict(data, groups=groups, hosts=hosts)


def names_only(network, addresses: set) -> bool:
    """Whether a network entry is exactly one of these addresses (bare, /32 or /128)."""
    try:
        net = ipaddress.ip_network(str(network), strict=False)
    except ValueError:
        return False
    return net.num_addresses == 1 and str(net.network_address) in addresses


def leaving_admission(data: dict, roles: dict, leaving) -> dict:
    """For each leaving worker, the entries of site_worker_networks and
    site_postgresql_extra_clients that admit its address: `exact` (its address alone; the
    decommission drops them, the user takes them out of the inventory) and `networks` (wider:
    PostgreSQL and the firewalls still admit the address, e.g. for the next host given it).
    Call it on an inventory plan() accepted: the entries are valid networks then."""
    inv = Inventory(data, roles)
    members = inv.members()
    entries = [(name, network) for name in ADMITTING_SETTINGS
               for network in ((inv.raw(members[0], name, CLUSTER_DEFAULTS[name]) or []) if members else [])]
    result = {}
    for host in leaving or []:
        address = inv.address(host)
        exact = [f"{network} in {name}" for name, network in entries if names_only(network, {address})]
        wider = [f"{network} in {name}" for name, network in entries
                 if not names_only(network, {address}) and covered(address, [str(network)])]
        result[host] = {"address": address, "exact": exact, "networks": wider}
    return result


def peers_to_address(data: dict, roles: dict) -> list[str]:
    """Hosts outside this run whose address the plan needs and does not have (no facts, no cache):
    the caller gathers their facts, then plans."""
    inv = Inventory(data, roles)
    members = inv.members()
    firewall = cluster_settings(inv)["site_firewall"]
    groups = inv.groups
    needed = (groups["redis"] + groups["postgresql"] + groups["api_server"] + groups["monitoring"]
              + (groups["flower"] if groups["monitoring"] else [])
              + (members if firewall else []))
    return [host for host in unique(needed) if host not in inv.play_hosts and not inv.address(host)]


def load_roles(roles_dir) -> dict:
    """What the planner needs of the roles, read from their own files: each role's defaults and
    required secrets (meta/argument_specs.yml), and which shared Airflow secrets each component needs
    (roles/_airflow_common/vars/main.yml)."""
    from pathlib import Path

    import yaml

    roles_dir = Path(roles_dir)
    defaults, secrets, specs = {}, {}, {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        entry = "host" if role == "_airflow_common" else "main"
        options = yaml.safe_load(spec_file.read_text())["argument_specs"][entry].get("options", {})
        specs[role] = options
        defaults[role] = {name: option.get("default") for name, option in options.items()}
        secrets[role] = [name for name, option in options.items() if option.get("required") and option.get("no_log")]
    common = yaml.safe_load((roles_dir / "_airflow_common" / "vars" / "main.yml").read_text())
    return {"defaults": defaults, "secrets": secrets, "specs": specs,
            "component_needs": common["__airflow_common_component_needs"],
            "need_secrets": common["__airflow_common_need_secrets"]}


def secret_names(roles: dict) -> list[str]:
    """Every secret input the planner may ask a host for."""
    return unique([name for names in roles["secrets"].values() for name in names]
                  + [name for names in roles["need_secrets"].values() for name in names]
                  + [source for _unused, source in SECRET_SOURCES.values()])
