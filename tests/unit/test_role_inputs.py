"""Each role's input checks (plugins/plugin_utils/role_inputs.py): the role's real defaults plus its
required secrets pass; each bad input gives its message; secrets never appear in one. Pure Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import role_inputs  # noqa: E402


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def internal(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text()) or {}


VALID = {
    "redis": dict(defaults("redis"), redis_password="unit-broker-Secret-1", redis_bind=["10.0.0.1"],
                  redis_exporter_address="10.0.0.1"),
    "postgresql": dict(defaults("postgresql"), postgresql_airflow_password="unit-db-Secret-1",
                       postgresql_result_backend_password="unit-results-Secret-1", postgresql_listen_addresses=["10.0.0.1"],
                       postgresql_airflow_clients=["10.0.0.2"], postgresql_result_backend_clients=["10.0.0.3", "10.9.0.0/24"],
                       postgresql_exporter_address="10.0.0.1"),
    "worker": defaults("worker"),
    "flower": dict(defaults("flower"), flower_basic_auth="ops:unit-Flower-Secret-1"),
    "prometheus": dict(defaults("prometheus"), prometheus_address="10.0.0.5", prometheus_basic_auth="ops:unit-Prometheus-Secret-1",
                       prometheus_targets=[{"job": "redis", "targets": ["10.0.0.1:9121"]},
                                           {"job": "flower", "targets": ["10.0.0.1:5555"], "username": "ops", "password": "p-Secret-1"}]),
    "firewall": {"firewall_rules": [{"name": "Redis", "port": 6379, "sources": ["10.0.0.2", "10.9.0.0/24", "2001:db8::/32"]}]},
    "api_balancer": dict(defaults("api_balancer"), api_balancer_servers=[
        {"name": "api1", "address": "10.0.0.2", "port": 8080}, {"name": "api2.example", "address": "2001:db8::2", "port": 8443}]),
}
CONTEXT = {
    "redis": {"fixed_directives": internal("redis")["__redis_fixed_directives"]},
    "postgresql": {"exporter_user": internal("postgresql")["__postgresql_exporter_user"]},
    "worker": {"visibility_timeout": 21600},
    "flower": {},
    "prometheus": {},
    "firewall": {"ssh_port": 22, "host": "h1"},
    "api_balancer": {"host": "h1"},
}


def check(role, **changes):
    return role_inputs.CHECKS[role](dict(VALID[role], **changes), CONTEXT[role])


def one(role, **changes) -> str:
    errors = check(role, **changes)
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("role", sorted(set(role_inputs.CHECKS) - {"_airflow_common"}))
def test_defaults_pass(role):
    assert check(role) == []


def test_every_role_with_a_preflight_file_is_checked_in_python():
    for role in role_inputs.CHECKS:
        assert f"role: {role}" in (ROOT / "roles" / role / "tasks" / "preflight.yml").read_text()


def test_the_shared_airflow_inputs_go_through_the_same_entry():
    """role_preflight with role _airflow_common hands its context to airflow_inputs.check()."""
    needs = {"worker": ["broker", "result_backend", "api_secret_key"]}
    errors = role_inputs.CHECKS["_airflow_common"](
        {"airflow_redis_password": "", "airflow_version": "3.3.2"},
        {"host": "w1", "components": ["worker"], "needs": needs["worker"],
         "need_secrets": {"broker": ["airflow_redis_password"], "result_backend": [], "api_secret_key": []},
         "lock_exists": False, "python_minor": "3.11"})
    assert errors[0].startswith("airflow_redis_password is not set for w1 (which runs worker)")
    assert any(error.startswith("No lock file airflow-3.3.2-python3.11.txt") for error in errors)


@pytest.mark.parametrize(("role", "changes", "expected", "secret"), [
    ("redis", {"redis_password": "Sh0rt!"}, "redis_password must be at least 12 characters without whitespace.", "Sh0rt!"),
    ("redis", {"redis_password": "long enough Secret 1"}, "redis_password must be at least 12 characters", "long enough Secret 1"),
    ("redis", {"redis_password": None}, "redis_password must be at least 12", None),
    ("redis", {"redis_maxmemory": "lots"}, "redis_maxmemory=lots (e.g. 0, 512mb, 2gb)", None),
    ("redis", {"redis_bind": [""]}, "redis_bind=[''] (every entry must be an address", None),
    ("redis", {"redis_bind": []}, "redis_bind=[]", None),
    ("redis", {"redis_port": 70000}, "redis_port=70000 (1-65535)", None),
    ("redis", {"redis_tls_cert_file": "/c"}, "Set all of redis_tls_cert_file, redis_tls_key_file and redis_tls_ca_file", None),
    ("redis", {"redis_exporter_enabled": True, "redis_exporter_port": 6379}, "redis_exporter_port=6379 (1-65535, not redis_port 6379)", None),
    ("redis", {"redis_exporter_enabled": True, "redis_exporter_address": ""}, 'redis_exporter_address="" (empty: set it', None),
    ("redis", {"redis_extra_config": {"appendonly": "no"}}, "redis_extra_config may not set appendonly: the role fixes", None),
    ("redis", {"redis_replication_hosts": [{"name": "r1", "address": "10.0.0.1"}, {"name": "r2", "address": "10.0.0.2"}]},
     "redis_replication_hosts lists 2 broker hosts: Redis Sentinel needs 3 or more", None),
    ("redis", {"redis_bind": ["10.0.0.9"], "redis_replication_hosts": [{"name": f"r{i}", "address": f"10.0.0.{i}"} for i in (1, 2, 3)]},
     "redis_bind starts with 10.0.0.9, which is not this host's address among the broker hosts (10.0.0.1, 10.0.0.2, 10.0.0.3)", None),
    ("redis", {"redis_bind": ["10.0.0.1"], "redis_sentinel_port": 6379,
               "redis_replication_hosts": [{"name": f"r{i}", "address": f"10.0.0.{i}"} for i in (1, 2, 3)]},
     "redis_sentinel_port=6379 (1-65535, not redis_port nor redis_exporter_port)", None),
    ("redis", {"redis_bind": ["10.0.0.1"], "redis_sentinel_down_after_ms": 5000, "redis_sentinel_failover_timeout_ms": 6000,
               "redis_replication_hosts": [{"name": f"r{i}", "address": f"10.0.0.{i}"} for i in (1, 2, 3)]},
     "redis_sentinel_failover_timeout_ms=6000 (at least twice redis_sentinel_down_after_ms)", None),
    ("redis", {"redis_bind": ["10.0.0.1"], "redis_sentinel_master_name": "my master",
               "redis_replication_hosts": [{"name": f"r{i}", "address": f"10.0.0.{i}"} for i in (1, 2, 3)]},
     "redis_sentinel_master_name='my master' (letters, digits, . _ -)", None),
    ("redis", {"redis_extra_config": {"MaxMemory-Policy": "allkeys-lru"}}, "redis_extra_config may not set maxmemory-policy", None),
    ("postgresql", {"postgresql_airflow_password": "Sh0rt!"}, "postgresql_airflow_password must be at least 12 characters.", "Sh0rt!"),
    ("postgresql", {"postgresql_result_backend_password": "Sh0rt-Res!"}, "postgresql_result_backend_password must be at least 12", "Sh0rt-Res!"),
    ("postgresql", {"postgresql_result_backend_user": "airflow"},
     "postgresql_result_backend_user (airflow) must differ from postgresql_airflow_user (airflow)", None),
    ("postgresql", {"postgresql_result_backend_database": "airflow"},
     "postgresql_result_backend_database (airflow) from postgresql_airflow_database (airflow)", None),
    ("postgresql", {"postgresql_airflow_clients": ["not an address"]}, "not valid: not an address;", None),
    ("postgresql", {"postgresql_airflow_clients": ["10.0.0.1/33"]}, "not valid: 10.0.0.1/33", None),
    ("postgresql", {"postgresql_airflow_clients": ["10.0.0.1\n"]}, "not valid: 10.0.0.1\n", None),
    ("postgresql", {"postgresql_result_backend_clients": ["192.0.2.300"]}, "not valid: 192.0.2.300)", None),
    ("postgresql", {"postgresql_result_backend_clients": ["all"]}, "not valid: all)", None),
    ("postgresql", {"postgresql_result_backend_user": "Celery-Results"}, "postgresql_result_backend_user=Celery-Results", None),
    ("postgresql", {"postgresql_shared_buffers": "lots"}, "postgresql_shared_buffers=lots (e.g. 128MB, 2GB)", None),
    ("postgresql", {"postgresql_max_connections": 5}, "postgresql_max_connections=5 (at least 10)", None),
    ("postgresql", {"postgresql_max_connections": "many"}, "postgresql_max_connections=many", None),
    ("postgresql", {"postgresql_listen_addresses": [""]}, "postgresql_listen_addresses=[''] (an empty entry", None),
    ("postgresql", {"postgresql_tls_cert_file": "/c"}, 'postgresql_tls_cert_file="/c" and postgresql_tls_key_file="" (both or neither)', None),
    ("postgresql", {"postgresql_exporter_enabled": True, "postgresql_exporter_port": 5432},
     "postgresql_exporter_port=5432 (1-65535, not postgresql_port 5432)", None),
    ("postgresql", {"postgresql_exporter_enabled": True, "postgresql_exporter_address": "*"}, 'postgresql_exporter_address="*"', None),
    ("postgresql", {"postgresql_exporter_enabled": True, "postgresql_exporter_basic_auth": "prometheus:Sh0rt!"},
     'postgresql_exporter_basic_auth must be "user:password" or "user1:password1,user2:password2", passwords at least 12 '
     "characters without commas or whitespace (or empty: no login)", "Sh0rt!"),
    ("postgresql", {"postgresql_exporter_enabled": True, "postgresql_exporter_tls_key_file": "/k"},
     'postgresql_exporter_tls_cert_file="" and postgresql_exporter_tls_key_file="/k" (both or neither)', None),
    ("worker", {"worker_concurrency": 0}, "worker_concurrency=0 (at least 1)", None),
    ("worker", {"worker_concurrency": "many"}, "worker_concurrency=many", None),
    ("worker", {"worker_queues": ["bad queue"]}, "worker_queues=['bad queue'] (at least one name of letters, digits, _.-)", None),
    ("worker", {"worker_queues": []}, "worker_queues=[]", None),
    ("worker", {"worker_stop_timeout": 999999},
     "worker_stop_timeout=999999 (seconds, at least the longest task, at most airflow_celery_visibility_timeout=21600", None),
    ("worker", {"worker_stop_timeout": 0}, "worker_stop_timeout=0", None),
    ("worker", {"worker_memory_max": "lots"}, "worker_memory_max='lots' must be a memory size for systemd's MemoryMax", None),
    ("worker", {"worker_memory_max": "100M"}, "worker_memory_max='100M' must be", None),
    ("worker", {"worker_memory_max": "5%"}, "worker_memory_max='5%' must be", None),
    ("worker", {"worker_memory_max": "150%"}, "worker_memory_max='150%' must be", None),
    ("worker", {"worker_memory_max": "2 G"}, "worker_memory_max='2 G' must be", None),
    ("worker", {"worker_max_tasks_per_child": -1}, "worker_max_tasks_per_child=-1 must be a whole number, 0 for no limit.", None),
    ("worker", {"worker_max_memory_per_child": "big"}, "worker_max_memory_per_child='big' must be a whole number", None),
    ("postgresql", {"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_port": 5432},
     "Invalid PgBouncer settings: postgresql_pgbouncer_port=5432 (1-65535, not postgresql_port 5432", None),
    ("postgresql", {"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_port": 9187},
     "postgresql_pgbouncer_port=9187 (1-65535, not postgresql_port 5432 nor postgresql_exporter_port 9187)", None),
    ("postgresql", {"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_metadata_pool": 0},
     "postgresql_pgbouncer_metadata_pool=0 (at least 1)", None),
    ("postgresql", {"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_reserve_pool": -1},
     "postgresql_pgbouncer_reserve_pool=-1 (0 or more)", None),
    ("postgresql", {"postgresql_pgbouncer_enabled": True, "postgresql_direct_clients": ["anyone"]},
     "postgresql_direct_clients=['anyone'] (IPv4/IPv6 addresses or CIDRs; not valid: anyone)", None),
    ("flower", {"flower_basic_auth": "ops:Sh0rt!"}, 'flower_basic_auth must be "user:password"', "Sh0rt!"),
    ("flower", {"flower_basic_auth": "ops:long-enough-Secret,second"}, "flower_basic_auth must be", "long-enough-Secret"),
    ("flower", {"flower_port": 0}, "Invalid Flower settings, flower_port=0 (1-65535)", None),
    ("flower", {"flower_bind_address": ""}, "flower_bind_address=,", None),
    ("flower", {"flower_tls_key_file": "/k"}, 'flower_tls_cert_file="" and flower_tls_key_file="/k" (both or neither)', None),
    ("prometheus", {"prometheus_address": ""}, 'prometheus_address="" (empty: this host has no default IPv4 route, set it)', None),
    ("prometheus", {"prometheus_retention_time": "forever"}, "prometheus_retention_time=forever (e.g. 15d)", None),
    ("prometheus", {"prometheus_scrape_interval": "often"}, "prometheus_scrape_interval=often (e.g. 15s)", None),
    ("prometheus", {"prometheus_port": 0}, "prometheus_port=0 (1-65535)", None),
    ("prometheus", {"prometheus_targets": [{"job": "a", "targets": ["x:1"]}, {"job": "a", "targets": ["y:1"]}]},
     "every job needs a unique name", None),
    ("prometheus", {"prometheus_targets": [{"job": "airflow", "targets": ["x:1"]}]}, 'other than "prometheus" and "airflow"', None),
    ("prometheus", {"prometheus_targets": [{"job": "a b", "targets": ["x:1"]}]}, "(jobs: a b)", None),
    ("prometheus", {"prometheus_targets": [{"job": "a", "targets": []}]}, "at least one target", None),
    ("prometheus", {"prometheus_targets": [{"job": "a", "targets": ["x:1"], "scheme": "ftp"}]}, "scheme is http or https", None),
    ("prometheus", {"prometheus_targets": [{"job": "a", "targets": ["x:1"], "password": "p-Secret-Value-1"}]},
     "username and password come together", "p-Secret-Value-1"),
    ("prometheus", {"prometheus_statsd_receiver": True, "prometheus_statsd_port": 0}, "prometheus_statsd_port=0 must be 1-65535.", None),
    ("prometheus", {"prometheus_basic_auth": "ops:Sh0rt!"}, 'prometheus_basic_auth must be "user:password"', "Sh0rt!"),
    ("prometheus", {"prometheus_basic_auth": ""}, 'e.g. prometheus_basic_auth: "ops:{{ vault_prometheus_password }}"', None),
    ("prometheus", {"prometheus_tls_cert_file": "/c", "prometheus_tls_key_file": "/k"},
     'prometheus_tls_cert_file="/c", prometheus_tls_key_file="/k" and prometheus_tls_ca_file="": all three (HTTPS) or none', None),
    ("prometheus", {"prometheus_certificate_warning_days": 0}, "prometheus_certificate_warning_days=0 must be a number of days", None),
    ("prometheus", {"prometheus_certificates": [{"host": "db", "service": "", "not_after": 1828150200}]},
     "prometheus_certificates: each entry needs a host, a service and not_after", None),
    ("prometheus", {"prometheus_certificates": [{"host": "db", "service": "redis", "not_after": 0}]},
     "not so: {'host': 'db', 'service': 'redis', 'not_after': 0}", None),
    ("firewall", {"firewall_rules": [{"name": "x", "port": 0, "sources": ["10.0.0.1"]}]}, "firewall_rules on h1: every port must be 1-65535 (got 0)", None),
    ("firewall", {"firewall_rules": [{"name": "x", "port": 80, "sources": ["office"]}]}, "(not valid: office)", None),
    ("firewall", {"firewall_rules": [{"name": "x", "port": 80, "sources": ["10.0.0.0/8\n"]}]}, "(not valid: '10.0.0.0/8\\n')", None),
    ("firewall", {"firewall_rules": [{"name": "x", "port": 80, "sources": ["10.0.0.300"]}]}, "(not valid: 10.0.0.300)", None),
    ("firewall", {"firewall_rules": [{"name": "sshd", "port": 22, "sources": ["10.0.0.1"]}]},
     "firewall_rules on h1 would filter port 22, the SSH port this run connects through (sshd)", None),
    ("api_balancer", {"api_balancer_servers": [{"name": "api1", "address": "10.0.0.2", "port": 0}]},
     "api_balancer_servers on h1: each api server needs a name", None),
    ("api_balancer", {"api_balancer_servers": [{"name": "api 1", "address": "10.0.0.2", "port": 8080}]}, "not valid: api 1", None),
    ("api_balancer", {"api_balancer_servers": [{"name": "api1", "address": "10.0.0.2 ", "port": 8080}]}, "not valid: api1", None),
    ("api_balancer", {"api_balancer_servers": [{"name": "a", "address": "10.0.0.2", "port": 80}, {"name": "a", "address": "10.0.0.3", "port": 80}]},
     "names an api server twice: a", None),
    ("api_balancer", {"api_balancer_port": 70000}, "api_balancer_port=70000 on h1 must be a port 1-65535.", None),
    ("api_balancer", {"api_balancer_fall": 0}, "api_balancer_fall=0 on h1 must be a whole number, 1 or more.", None),
])
def test_bad_input(role, changes, expected, secret):
    message = one(role, **changes)
    assert expected in message
    if secret:
        assert secret not in message


def test_firewall_ssh_port_from_the_connection():
    rules = [{"name": "api", "port": 2222, "sources": ["10.0.0.1"]}]
    assert role_inputs.firewall({"firewall_rules": rules}, {"ssh_port": 2222, "host": "h1"})
    assert role_inputs.firewall({"firewall_rules": rules}, {"ssh_port": "22", "host": "h1"}) == []


def test_numbers_given_as_strings_pass():
    assert check("redis", redis_port="6380", redis_exporter_port="9121", redis_exporter_enabled=True) == []
    assert check("worker", worker_concurrency="4", worker_stop_timeout="600") == []
    for bound in ("85%", "100%", "10%", "1536M", "4G", "268435456", "1T"):
        assert check("worker", worker_memory_max=bound) == [], bound
    assert check("postgresql", postgresql_pgbouncer_enabled=True, postgresql_direct_clients=["10.0.0.2"]) == []


def test_empty_rules_pass():
    assert role_inputs.firewall({"firewall_rules": []}, {"ssh_port": 22}) == []


@pytest.mark.parametrize(("name", "value"), [
    ("redis_password", "unit-broker-Secret-1\n"),                       # a secret read from a file, newline kept
    ("redis_extra_config", {"maxclients": "100\nrename-command CONFIG \"\""}),  # a second directive smuggled in
    ("redis_extra_config", {"maxclients\r": "100"}),                     # in a key
    ("redis_bind", ["10.0.0.1", "10.0.0.2\x00"]),                        # NUL in a list item
])
def test_line_breaks_are_refused_by_name_never_by_value(name, value):
    errors = role_inputs.check("redis", dict(VALID["redis"], **{name: value}), dict(CONTEXT["redis"], host="h1"))
    assert errors[0].startswith(f"{name} on h1 holds a carriage return, line feed or NUL"), errors
    assert "unit-broker-Secret-1" not in " ".join(errors) and "rename-command" not in " ".join(errors)


def test_line_breaks_of_several_inputs_are_one_message():
    values = dict(VALID["flower"], flower_basic_auth="ops:unit-Flower-Secret-1\n", flower_bind_address="10.0.0.1\r")
    errors = role_inputs.check("flower", values, {"host": "h2"})
    assert errors[0].startswith("flower_basic_auth, flower_bind_address on h2 hold a carriage return"), errors


@pytest.mark.parametrize("role", sorted(set(role_inputs.CHECKS) - {"_airflow_common"}))
def test_one_line_values_pass_the_line_check(role):
    assert role_inputs.line_break_errors(VALID[role], "h1") == []
    assert role_inputs.check(role, VALID[role], dict(CONTEXT[role], host="h1")) == []


def test_numbers_booleans_and_none_are_not_line_breaks():
    assert role_inputs.line_break_errors({"a": 1, "b": True, "c": None, "d": 2.5, "e": [1, {"k": False}]}, "h1") == []
