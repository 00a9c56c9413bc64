"""The cluster plan (plugins/plugin_utils/cluster_plan.py): inventory shapes, cross-checks and
every error message, with the roles' real defaults. Pure Python: no hosts, no Ansible."""

from __future__ import annotations

import copy
import json
import hashlib
import ipaddress
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import cluster_plan  # noqa: E402

ROLES = cluster_plan.load_roles(ROOT / "roles")
# Every secret an inventory sets (as group_vars/all does); not the airflow_* copies of the broker's
# and database's passwords, which site.yml derives.
SECRETS = {name: hashlib.sha256(name.encode()).hexdigest() for name in cluster_plan.secret_names(ROLES)
           if name not in cluster_plan.SECRET_SOURCES}


def inventory(groups: dict, addresses: dict | None = None, common: dict | None = None, host_vars: dict | None = None,
              play_hosts: list | None = None, secrets: dict | None = None) -> dict:
    """An inventory as the action plugin reads it: every host gets every secret (as group_vars/all
    does) unless `secrets` says otherwise; addresses 10.0.0.N in order of appearance by default."""
    members = cluster_plan.unique(host for hosts in groups.values() for host in hosts)
    addresses = addresses or {host: f"10.0.0.{n}" for n, host in enumerate(members, start=1)}
    hosts = {}
    for host in members:
        own = dict(common or {}, **(host_vars or {}).get(host, {}))
        hosts[host] = {"address": addresses.get(host), "vars": own,
                       "secrets": dict(SECRETS, **(secrets or {}).get(host, {}))}
    return {"groups": groups, "hosts": hosts, "play_hosts": play_hosts or members}


def plan(data):
    return cluster_plan.plan(data, ROLES)


def errors(data) -> list[str]:
    with pytest.raises(cluster_plan.PlanError) as caught:
        plan(data)
    return caught.value.errors


def one_error(data) -> str:
    found = errors(data)
    assert len(found) == 1, found
    return found[0]


# --- inventory shapes --------------------------------------------------------------------------

ALL_IN_ONE = {"redis": ["aio"], "postgresql": ["aio"], "scheduler": ["aio"], "api_server": ["aio"], "workers": ["aio"]}
SPLIT = {"redis": ["data"], "postgresql": ["data"], "scheduler": ["core"], "api_server": ["core"],
         "workers": ["w1", "w2"], "flower": ["core"]}
# the prod example (inventories/prod/hosts.yml)
PROD = yaml.safe_load((ROOT / "inventories" / "prod" / "hosts.yml").read_text())["all"]["children"]
PROD = {group: list(body["hosts"]) for group, body in PROD.items()}
# the cluster scenario (molecule/cluster/molecule.yml)
CLUSTER = {"redis": ["cl-broker"], "postgresql": ["cl-db"], "scheduler": ["cl-scheduler"], "api_server": ["cl-api"],
           "workers": ["cl-worker1", "cl-worker2"], "flower": ["cl-broker"], "monitoring": ["cl-db"]}
DEMO = yaml.safe_load((ROOT / "inventories" / "demo" / "hosts.yml").read_text())["all"]["children"]
DEMO = {group: list((body or {}).get("hosts") or []) for group, body in DEMO.items()}

SHAPES = {
    "all-in-one": (ALL_IN_ONE, {"site_allow_colocated_workers": True}),
    "split": (SPLIT, {}),
    "two-schedulers": (dict(SPLIT, scheduler=["s1", "s2"]), {}),
    "two-api-servers": (dict(SPLIT, api_server=["a1", "a2"]), {}),
    "worker-only-host": (dict(SPLIT, workers=["w1"]), {}),
    "monitoring": (CLUSTER, {}),
    "tls": (SPLIT, {"site_tls": True}),
    "firewall": (CLUSTER, {"site_firewall": True, "site_admin_networks": ["192.0.2.0/24"]}),
    "tls-and-firewall": (CLUSTER, {"site_tls": True, "site_firewall": True}),
    "prod": (PROD, {"site_tls": True, "site_firewall": True, "site_admin_networks": ["10.20.0.0/16"]}),
    "demo": (DEMO, {}),
    "worker-networks": (SPLIT, {"site_firewall": True, "site_worker_networks": ["10.9.0.0/24"],
                                "site_postgresql_extra_clients": ["10.8.0.0/24"]}),
    "queues-per-worker": (dict(SPLIT, workers=["w1", "w2", "gpu1"]), {"site_firewall": True}),
    "sentinel": (dict(SPLIT, redis=["r1", "r2", "r3"]), {"site_tls": True, "site_firewall": True}),
}
# Host variables a shape sets per host (what an inventory's host_vars would).
SHAPE_HOST_VARS = {
    "queues-per-worker": {"w1": {"worker_queues": ["default"], "worker_concurrency": 8},
                          "gpu1": {"worker_queues": ["gpu"], "worker_concurrency": 2}},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_plans(shape):
    groups, common = SHAPES[shape]
    result = plan(inventory(groups, common=common, host_vars=SHAPE_HOST_VARS.get(shape)))
    members = cluster_plan.unique(h for hosts in groups.values() for h in hosts)
    assert sorted(result["hosts"]) == sorted(members)
    assert result["broker"]["host"] == groups["redis"][0]
    assert result["database"]["host"] == groups["postgresql"][0]


def served_by(result, host, port, protocol="tcp"):
    return [rule for rule in result["hosts"][host]["firewall_rules"]
            if rule["port"] == port and rule.get("protocol", "tcp") == protocol]


def admits(sources, address):
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(s, strict=False) for s in sources)


@pytest.mark.parametrize("shape", [s for s in SHAPES if SHAPES[s][1].get("site_firewall")])
def test_every_client_endpoint_has_a_firewall_rule_and_pg_hba_line(shape):
    """Cross-check: each endpoint a host's components use is open to that host, and PostgreSQL admits
    exactly the clients that hold its logins."""
    groups, common = SHAPES[shape]
    result = plan(inventory(groups, common=common, host_vars=SHAPE_HOST_VARS.get(shape)))
    for host, mine in result["hosts"].items():
        address, components = mine["address"], mine["components"]
        if components:  # every Airflow host talks to the broker and the api server
            assert served_by(result, result["broker"]["host"], result["broker"]["port"])[0]["sources"], host
            assert admits(served_by(result, result["broker"]["host"], result["broker"]["port"])[0]["sources"], address)
            api = result["api_server"]
            for api_host in groups["api_server"]:
                assert admits(served_by(result, api_host, api["port"])[0]["sources"], address), (host, api_host)
        db = served_by(result, result["database"]["host"], result["database"]["port"])[0]["sources"]
        metadata = {"scheduler", "dag-processor", "triggerer", "api-server"} & set(components)
        results = {"scheduler", "worker"} & set(components)
        assert (address in result["postgresql"]["airflow_clients"]) == bool(metadata), host
        assert admits(result["postgresql"]["result_backend_clients"], address) == bool(results) or \
            admits(common.get("site_worker_networks", []) + common.get("site_postgresql_extra_clients", []), address), host
        if metadata or results:
            assert admits(db, address), host
        if "worker" in components:
            for api_host in groups["api_server"]:
                log = served_by(result, host, 8793)[0]["sources"]
                assert result["hosts"][api_host]["address"] in log
        if "triggerer" in components:  # the api servers read the triggers' logs there
            assert served_by(result, host, 8794)[0]["sources"] == [
                result["hosts"][api_host]["address"] for api_host in groups["api_server"]], host


@pytest.mark.parametrize("shape", [s for s in SHAPES if SHAPES[s][1].get("site_firewall")])
def test_nothing_else_is_open(shape):
    """Every rule opens a port the host listens on, and only to sources the rules name."""
    groups, common = SHAPES[shape]
    result = plan(inventory(groups, common=common, host_vars=SHAPE_HOST_VARS.get(shape)))
    for host, mine in result["hosts"].items():
        listening = {entry["port"] for entry in mine["listen"]} | (
            {result["statsd"]["port"]} if host in groups.get("monitoring", []) else set())
        assert {rule["port"] for rule in mine["firewall_rules"]} == listening, host
        for rule in mine["firewall_rules"]:
            for source in rule["sources"]:
                ipaddress.ip_network(source, strict=False)  # an address or CIDR, nothing else


def test_split_plan_golden():
    result = plan(inventory(SPLIT))
    assert result["broker"] == {"host": "data", "address": "10.0.0.1", "port": 6379, "sentinel": False, "hosts": [],
                                "sentinels": [], "master_name": "airflow"}
    # Through PgBouncer (site_pgbouncer, on by default); the migration goes to PostgreSQL's own port.
    assert result["database"] == {"host": "data", "address": "10.0.0.1", "port": 6432, "direct_port": 5432,
                                  "name": "airflow", "user": "airflow"}
    assert result["result_backend"]["user"] == "airflow_celery" and result["result_backend"]["port"] == 6432
    assert result["api_server"] == {"host": "core", "address": "10.0.0.2", "port": 8080, "balanced": False,
                                    "servers": [{"name": "core", "address": "10.0.0.2", "port": 8080}]}
    assert result["postgresql"] == {"airflow_clients": ["10.0.0.2"],
                                    "result_backend_clients": ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
                                    "direct_clients": ["10.0.0.2"], "clients_moving": False,
                                    # PgBouncer's pools: metadata 3 x 3 processes + 5 x 2 api workers = 19,
                                    # results 1 x 3 hosts, at least 5; reserve 3 each; 30 + 10 + 3 fit the fixed 100.
                                    "max_connections": 100,
                                    "pgbouncer": {"enabled": True, "port": 6432, "max_client_conn": 200, "metadata_pool": 19,
                                                  "result_backend_pool": 5, "reserve_pool": 3, "leaving": False}}
    # core: 15 each for scheduler, dag-processor, triggerer; 2 x 2 x 15 for the api server; 15 results
    assert result["connections"]["clients"] == {"core": 120, "w1": 16, "w2": 16}
    data_rules = {rule["port"]: rule["sources"] for rule in result["hosts"]["data"]["firewall_rules"]}
    assert data_rules[6432] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"] and data_rules[5432] == ["10.0.0.2"]
    assert result["hosts"]["core"]["components"] == ["scheduler", "dag-processor", "triggerer", "api-server", "flower"]
    assert result["hosts"]["core"]["roles"] == ["_airflow_common", "airflow", "flower", "firewall"]
    assert result["hosts"]["data"]["roles"] == ["redis", "postgresql", "firewall"]
    assert result["hosts"]["w1"]["components"] == ["worker"]
    assert result["hosts"]["w1"]["airflow_components"] == []
    assert result["hosts"]["core"]["db_clean"] and not result["hosts"]["w1"]["db_clean"]
    assert result["hosts"]["data"]["firewall_rules"] and result["firewall"] and result["tls"]
    assert result["statsd"] == {"host": "", "port": 8125}
    assert result["prometheus_targets"] == []
    assert result["notes"] == []


def test_tls_and_the_firewall_are_on_unless_switched_off_and_then_the_run_says_so():
    """Secure by default: an inventory that says nothing gets TLS and the network policy; one that
    switches either off is planned as asked, with a warning naming the switch (the run prints it)."""
    assert plan(inventory(SPLIT))["notes"] == []
    for switch, words in (("site_tls", "in clear text"), ("site_firewall", "every port")):
        result = plan(inventory(SPLIT, common={switch: False}))
        assert result[switch.split("_")[1]] is False
        assert [note for note in result["notes"] if note.startswith(f"{switch} is false")], result["notes"]
        assert words in " ".join(result["notes"])
    both = plan(inventory(SPLIT, common={"site_tls": False, "site_firewall": "false"}))
    assert len(both["notes"]) == 2 and not both["tls"] and not both["firewall"]


def test_worker_gets_no_control_plane_secret():
    result = plan(inventory(SPLIT))
    assert set(result["hosts"]["w1"]["secrets"]) == {"airflow_redis_password", "airflow_result_backend_password",
                                                     "airflow_api_secret_key"}
    assert "airflow_fernet_key" in result["hosts"]["core"]["secrets"]
    assert "flower_basic_auth" in result["hosts"]["core"]["secrets"]
    assert {"redis_password", "postgresql_airflow_password"} <= set(result["hosts"]["data"]["secrets"])


def test_plan_carries_no_secret_value():
    result = plan(inventory(CLUSTER, common={"site_firewall": True}))
    text = repr(result)
    for value in SECRETS.values():
        assert value not in text


def test_monitoring_plan_golden():
    result = plan(inventory(CLUSTER, common={"site_tls": True}))
    # cl-broker 10.0.0.1, cl-db 10.0.0.2 (groups in order of appearance)
    assert result["monitoring"] == {"host": "cl-db", "enabled": True}
    assert result["statsd"] == {"host": "10.0.0.2", "port": 8125}
    assert result["prometheus_targets"] == [{"job": "redis", "targets": ["10.0.0.1:9121"]}]
    # Over TLS, with the scrape login (its password derived by site.yml from prometheus_basic_auth).
    assert result["prometheus_postgresql_target"] == {"job": "postgresql", "targets": ["10.0.0.2:9187"], "scheme": "https",
                                                      "username": "prometheus"}
    assert plan(inventory(CLUSTER, common={"site_tls": False}))["prometheus_postgresql_target"]["scheme"] == "http"
    assert plan(inventory(SPLIT))["prometheus_postgresql_target"] == {}
    assert result["prometheus_flower_target"] == {"job": "flower", "targets": ["10.0.0.1:5555"], "scheme": "https"}
    assert result["prometheus_flower_login_host"] == "cl-broker"
    assert plan(inventory(dict(CLUSTER, flower=[])))["prometheus_flower_target"] == {}
    assert plan(inventory(SPLIT))["prometheus_flower_target"] == {}
    assert [entry["input"] for entry in result["hosts"]["cl-db"]["listen"]] == [
        "postgresql_port", "postgresql_pgbouncer_port", "postgresql_exporter_port", "prometheus_port"]


def test_statsd_receiver_off_leaves_statsd_host_empty():
    result = plan(inventory(CLUSTER, host_vars={"cl-db": {"prometheus_statsd_receiver": "false"}}))
    assert result["statsd"]["host"] == ""


def test_queues_per_worker_each_worker_admitted_and_its_slots_counted():
    groups, common = SHAPES["queues-per-worker"]
    result = plan(inventory(groups, common=common, host_vars=SHAPE_HOST_VARS["queues-per-worker"]))
    slots = SHAPE_HOST_VARS["queues-per-worker"]["gpu1"]["worker_concurrency"]
    assert result["connections"]["clients"]["gpu1"] == slots and result["connections"]["clients"]["w2"] == 16
    gpu = result["hosts"]["gpu1"]
    assert gpu["components"] == ["worker"] and gpu["firewall_rules"][0]["port"] == 8793
    assert gpu["address"] in result["postgresql"]["result_backend_clients"]
    pooler = [rule for rule in result["hosts"]["data"]["firewall_rules"] if rule["name"].startswith("PgBouncer")][0]
    assert gpu["address"] in pooler["sources"]


def test_max_connections_without_pgbouncer_counts_every_client():
    groups = dict(SPLIT, scheduler=["s1", "s2"], api_server=["a1", "a2"])
    result = plan(inventory(groups, common={"airflow_api_server_workers": 4, "site_pgbouncer": False},
                            host_vars={"w1": {"worker_concurrency": 64}, "w2": {"worker_concurrency": "32"}}))
    # schedulers 2 x (45 + 15), api servers 2 x 4 x 30, workers 64 + 32: 456; + 13 = 469
    assert result["connections"]["client_total"] == 456
    assert result["postgresql"]["max_connections"] == 500
    assert result["database"]["port"] == 5432 and result["postgresql"]["direct_clients"] == []
    assert result["postgresql"]["pgbouncer"]["enabled"] is False
    data_rules = {rule["port"]: rule["sources"] for rule in result["hosts"]["data"]["firewall_rules"]}
    assert 6432 not in data_rules and "10.0.0.4" in data_rules[5432]
    assert plan(inventory(SPLIT, common={"site_postgresql_max_connections": 250, "site_pgbouncer": False})
                )["postgresql"]["max_connections"] == 250


def test_max_connections_behind_pgbouncer_stays_fixed_as_workers_are_added():
    small = plan(inventory(SPLIT))
    groups = dict(SPLIT, workers=[f"w{n}" for n in range(1, 41)])
    big = plan(inventory(groups, host_vars={f"w{n}": {"worker_concurrency": 32} for n in range(1, 41)}))
    assert small["postgresql"]["max_connections"] == big["postgresql"]["max_connections"] == 100
    # 40 workers x 32 slots + core 120 = 1400 clients; PgBouncer admits 1750 of them
    assert big["connections"]["client_total"] == 1400 and big["postgresql"]["pgbouncer"]["max_client_conn"] == 1800
    assert big["postgresql"]["pgbouncer"]["result_backend_pool"] == 20


def test_an_inventory_over_its_connection_budget_is_refused_with_the_numbers():
    message = one_error(inventory(SPLIT, common={"site_postgresql_max_connections": 40}))
    assert message.startswith("site_postgresql_max_connections=40 is too small: PgBouncer's pools (metadata 19 + result "
                              "backend 5 + reserve 6) 30 + 10 direct + 3 superuser reserved = 43. Set it to at least 43")
    message = one_error(inventory(SPLIT, common={"site_postgresql_max_connections": 100, "site_pgbouncer": False}))
    assert "152 + 10 direct + 3 superuser reserved = 165" in message and "without PgBouncer" in message
    message = one_error(inventory(SPLIT, common={"site_pgbouncer_max_client_conn": 100}))
    assert message == ("site_pgbouncer_max_client_conn=100 is below the 152 connections the Airflow hosts may open (core 120, "
                       "w1 16, w2 16). Set it at least to 152, or leave it unset (200).").replace("Set it at least to", "Set it to at least")
    assert one_error(inventory(SPLIT, common={"site_pgbouncer": False, "site_pgbouncer_max_client_conn": 300})).startswith(
        "site_pgbouncer_max_client_conn is set but site_pgbouncer is false")


def test_the_budget_is_printed_with_every_plan():
    assert plan(inventory(SPLIT))["connections"]["summary"] == (
        "Database connections: the Airflow hosts may open 152 (core 120, w1 16, w2 16); PgBouncer admits 200 and gives them "
        "30 server connections (pools: metadata 19, result backend 5; reserve 6); PostgreSQL max_connections 100 (needs 30 + "
        "10 direct + 3 superuser reserved).")


def test_settings_of_the_broker_and_database_reach_every_endpoint():
    data = {"redis_port": 6380, "postgresql_port": "5433", "postgresql_airflow_database": "meta"}
    result = plan(inventory(SPLIT, host_vars={"data": data}))
    assert result["broker"]["port"] == 6380
    assert result["database"]["direct_port"] == 5433 and result["database"]["port"] == 6432
    assert plan(inventory(SPLIT, host_vars={"data": dict(data, postgresql_pgbouncer_port=7432)}))["result_backend"]["port"] == 7432
    assert plan(inventory(SPLIT, common={"site_pgbouncer": False}, host_vars={"data": data}))["result_backend"]["port"] == 5433
    assert result["database"]["name"] == "meta"


def test_api_server_host_override():
    result = plan(inventory(dict(SPLIT, api_server=["a1", "a2"]), common={"site_api_server_host": "airflow.example.com"}))
    assert result["api_server"]["address"] == "airflow.example.com"
    # The user's load balancer: no HAProxy of the collection's.
    assert not result["api_server"]["balanced"] and all(not h["api_balancer_servers"] for h in result["hosts"].values())
    assert "api_balancer" not in result["hosts"]["w1"]["roles"] and result["hosts"]["w1"]["execution_api_url"] == ""


def test_two_api_servers_are_reached_through_each_workers_haproxy():
    """Two or more api servers and no site_api_server_host: each worker host runs HAProxy on loopback in front
    of all of them (roles/api_balancer, before the worker role) and its tasks call the execution API there;
    no other host runs it, and one api server leaves everything as it was."""
    shape = dict(SPLIT, api_server=["core", "api2"])
    result = plan(inventory(shape, host_vars={"api2": {"airflow_api_server_port": 8443}}))
    servers = [{"name": "core", "address": "10.0.0.2", "port": 8080}, {"name": "api2", "address": "10.0.0.3", "port": 8443}]
    assert result["api_server"]["balanced"] and result["api_server"]["servers"] == servers
    for worker in ("w1", "w2"):
        mine = result["hosts"][worker]
        assert mine["roles"] == ["_airflow_common", "api_balancer", "worker", "firewall"]
        assert mine["api_balancer_servers"] == servers
        assert mine["execution_api_url"] == "https://127.0.0.1:8079/execution/"
        # loopback only: no firewall rule for HAProxy's port
        assert 8079 not in {rule["port"] for rule in mine["firewall_rules"]}
    for other in ("core", "api2", "data"):
        assert result["hosts"][other]["api_balancer_servers"] == [] and result["hosts"][other]["execution_api_url"] == ""
    # the api servers admit the workers (HAProxy connects from their addresses)
    api2_rules = {rule["port"]: rule["sources"] for rule in result["hosts"]["api2"]["firewall_rules"]}
    assert {"10.0.0.4", "10.0.0.5"} <= set(api2_rules[8443])
    plain = plan(inventory(shape, common={"site_tls": False}, host_vars={"w1": {"api_balancer_port": 9079}}))
    assert plain["hosts"]["w1"]["execution_api_url"] == "http://127.0.0.1:9079/execution/"
    assert plain["hosts"]["w2"]["execution_api_url"] == "http://127.0.0.1:8079/execution/"
    assert not plan(inventory(SPLIT))["api_server"]["balanced"]


def test_haproxys_port_must_not_clash_on_a_worker_host():
    shape = dict(SPLIT, api_server=["core", "api2"])
    found = errors(inventory(shape, host_vars={"w1": {"api_balancer_port": 8793}}))
    assert [e for e in found if e.startswith("w1: ") and "airflow_worker_log_server_port and api_balancer_port are all 8793" in e], found
    # with one api server there is no HAProxy, and no clash
    assert plan(inventory(SPLIT, host_vars={"w1": {"api_balancer_port": 8793}}))


def test_tls_names():
    result = plan(inventory(SPLIT, addresses={"data": "10.0.0.1", "core": "10.0.0.2", "w1": "10.0.0.3", "w2": "10.0.0.4"},
                            common={"site_tls_extra_names": ["DNS:airflow.example.com"]}))
    assert result["hosts"]["core"]["tls_names"] == ["DNS:core", "IP:10.0.0.2", "DNS:localhost", "IP:127.0.0.1",
                                                    "DNS:airflow.example.com"]
    by_ip = plan(inventory({g: ["10.0.0.7"] for g in ALL_IN_ONE}, addresses={"10.0.0.7": "10.0.0.7"},
                           common={"site_allow_colocated_workers": True}))
    assert by_ip["hosts"]["10.0.0.7"]["tls_names"] == ["IP:10.0.0.7", "DNS:localhost", "IP:127.0.0.1"]


def test_each_tls_server_gets_a_key_and_certificate_of_its_own():
    result = plan(inventory(dict(SPLIT, flower=["data"], monitoring=["core"])))["hosts"]
    # The Redis exporter (Debian 12's serves no TLS) and the log servers serve plain HTTP.
    assert result["data"]["tls_services"] == ["redis", "postgresql", "postgresql_exporter", "flower"]
    assert result["data"]["tls_files"] == {
        "redis": {"cert": "/etc/airflow-ops/tls/redis.crt", "key": "/etc/airflow-ops/tls/redis.key"},
        "postgresql": {"cert": "/etc/airflow-ops/tls/postgresql.crt", "key": "/etc/airflow-ops/tls/postgresql.key"},
        "api_server": {"cert": "", "key": ""},
        "flower": {"cert": "/etc/airflow-ops/tls/flower.crt", "key": "/etc/airflow-ops/tls/flower.key"},
        "postgresql_exporter": {"cert": "/etc/airflow-ops/tls/postgresql_exporter.crt",
                                "key": "/etc/airflow-ops/tls/postgresql_exporter.key"},
        "prometheus": {"cert": "", "key": ""}}
    assert result["data"]["tls_unused"] == ["/etc/airflow-ops/tls/api_server.crt", "/etc/airflow-ops/tls/api_server.key",
                                            "/etc/airflow-ops/tls/prometheus.crt", "/etc/airflow-ops/tls/prometheus.key",
                                            "/etc/airflow-ops/tls/host.crt", "/etc/airflow-ops/tls/host.key"]
    assert result["core"]["tls_services"] == ["api_server", "prometheus"]
    # Workers serve nothing over TLS: no key at all, and none left from a service they ran before.
    assert result["w1"]["tls_services"] == [] and {files["key"] for files in result["w1"]["tls_files"].values()} == {""}
    assert len(result["w1"]["tls_unused"]) == 14 and "/etc/airflow-ops/tls/flower.key" in result["w1"]["tls_unused"]


def test_a_certificate_given_per_host_serves_all_its_tls_servers():
    given = {"site_tls_cert": "certs/{{ inventory_hostname }}.crt", "site_tls_key": "certs/{{ inventory_hostname }}.key",
             "site_tls_ca_cert": "certs/ca.crt"}
    data = plan(inventory(dict(SPLIT, flower=["data"]), common=given))["hosts"]["data"]
    assert data["tls_services"] == []  # nothing to make on the host
    assert "/etc/airflow-ops/tls/host.key" not in data["tls_unused"] and "/etc/airflow-ops/tls/redis.key" in data["tls_unused"]
    assert {service: files["cert"] for service, files in data["tls_files"].items()} == {
        "redis": "/etc/airflow-ops/tls/host.crt", "postgresql": "/etc/airflow-ops/tls/host.crt", "api_server": "",
        "flower": "/etc/airflow-ops/tls/host.crt", "postgresql_exporter": "", "prometheus": ""}


def test_the_monitoring_host_watches_every_certificate_a_tls_server_presents_and_the_ca():
    result = plan(inventory(dict(SPLIT, flower=["data"], monitoring=["core"])))
    assert result["tls_certificates"] == [
        {"host": "data", "service": "redis", "path": "/etc/airflow-ops/tls/redis.crt"},
        {"host": "data", "service": "postgresql", "path": "/etc/airflow-ops/tls/postgresql.crt"},
        {"host": "data", "service": "flower", "path": "/etc/airflow-ops/tls/flower.crt"},
        {"host": "data", "service": "postgresql_exporter", "path": "/etc/airflow-ops/tls/postgresql_exporter.crt"},
        {"host": "core", "service": "api_server", "path": "/etc/airflow-ops/tls/api_server.crt"},
        {"host": "core", "service": "prometheus", "path": "/etc/airflow-ops/tls/prometheus.crt"},
        {"host": "core", "service": "ca", "path": "/etc/airflow-ops/tls/ca.crt"}]
    # Nothing to watch: no monitoring host, or no TLS.
    assert plan(inventory(dict(SPLIT, flower=["data"])))["tls_certificates"] == []
    assert plan(inventory(dict(SPLIT, monitoring=["core"]), common={"site_tls": False}))["tls_certificates"] == []


def test_without_tls_no_service_has_a_certificate():
    data = plan(inventory(SPLIT, common={"site_tls": False}))["hosts"]["data"]
    assert data["tls_services"] == [] and {files["cert"] for files in data["tls_files"].values()} == {""}


def test_firewall_rules_golden_for_the_cluster_scenario():
    result = plan(inventory(CLUSTER, common={"site_firewall": True, "site_admin_networks": ["172.30.0.1"],
                                             "site_worker_networks": ["10.0.0.99"]}))
    airflow = ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.1", "10.0.0.99"]
    assert result["hosts"]["cl-broker"]["firewall_rules"] == [
        {"name": "Redis broker: the Airflow hosts", "port": 6379, "sources": airflow},
        {"name": "Flower: site_admin_networks and the monitoring host", "port": 5555, "sources": ["172.30.0.1", "10.0.0.2"]},
        {"name": "Redis exporter: the monitoring host", "port": 9121, "sources": ["10.0.0.2"]},
    ]
    assert result["hosts"]["cl-worker1"]["firewall_rules"] == [
        {"name": "worker log server: the api servers", "port": 8793, "sources": ["10.0.0.4"]}]
    db_rules = {rule["name"]: rule for rule in result["hosts"]["cl-db"]["firewall_rules"]}
    assert db_rules["PgBouncer: the Airflow hosts its hba admits"]["sources"] == [
        "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.99"]
    # PostgreSQL itself: the scheduler host alone, which migrates the database.
    assert db_rules["PostgreSQL: the clients pg_hba admits"]["sources"] == ["10.0.0.3"]
    assert db_rules["StatsD receiver: the Airflow hosts"] == {
        "name": "StatsD receiver: the Airflow hosts", "protocol": "udp", "port": 8125, "sources": airflow}
    assert result["hosts"]["cl-db"]["roles"][-1] == "firewall"
    assert result["hosts"]["cl-scheduler"]["firewall_rules"] == [
        {"name": "triggerer log server: the api servers", "port": 8794, "sources": ["10.0.0.4"]}]


def test_decommissioned_worker_leaves_every_rule():
    """A worker taken out of `workers` (playbooks/decommission_worker.yml, then the inventory) is in
    no pg_hba line and no firewall source of the next run."""
    before = plan(inventory(SPLIT, common={"site_firewall": True}))
    after = plan(inventory(dict(SPLIT, workers=["w1"]), addresses={"data": "10.0.0.1", "core": "10.0.0.2", "w1": "10.0.0.3"},
                           common={"site_firewall": True}))
    assert "10.0.0.4" in before["postgresql"]["result_backend_clients"]
    assert "10.0.0.4" not in repr(after)
    assert after["postgresql"]["max_connections"] <= before["postgresql"]["max_connections"]


def test_planning_without_leaving_workers_gives_the_plan_after_the_decommission():
    """cluster_plan's `leaving` (the decommission playbook, while the workers are still in the
    inventory) plans what the inventory without them plans: the pg_hba it re-renders is the one the
    next site.yml run keeps."""
    addresses = {"data": "10.0.0.1", "core": "10.0.0.2", "w1": "10.0.0.3", "w2": "10.0.0.4"}
    leaving = plan(cluster_plan.without_workers(inventory(SPLIT, addresses=addresses), ["w2"]))
    gone = plan(inventory(dict(SPLIT, workers=["w1"]), addresses=addresses))
    assert leaving["postgresql"] == gone["postgresql"]
    assert "10.0.0.4" not in leaving["postgresql"]["result_backend_clients"]
    assert (leaving["database"], leaving["result_backend"]) == (gone["database"], gone["result_backend"])


def test_a_scheduler_leaving_workers_keeps_its_database_login():
    groups = dict(SPLIT, workers=["w1", "core"])
    leaving = plan(cluster_plan.without_workers(inventory(groups), ["core"]))
    assert "10.0.0.2" in leaving["postgresql"]["airflow_clients"]
    assert "worker" not in leaving["hosts"]["core"]["components"]


def test_a_leaving_worker_admitted_by_its_own_address_is_not_admitted_after():
    """An entry of site_worker_networks or site_postgresql_extra_clients that is the leaving
    worker's address alone (bare or /32) leaves the plan with it and is named to be taken out of
    the inventory; a wider network stays and is named as still admitting the address."""
    common = {"site_worker_networks": ["10.0.0.4", "192.168.0.0/16"],
              "site_postgresql_extra_clients": ["10.0.0.4/32", "10.0.0.0/24"]}
    data = inventory(SPLIT, common=common)
    admission = cluster_plan.leaving_admission(data, ROLES, ["w2"])
    leaving = plan(cluster_plan.without_workers(data, ["w2"]))
    clients = leaving["postgresql"]["result_backend_clients"]
    assert "10.0.0.4" not in clients and "10.0.0.4/32" not in clients
    assert "192.168.0.0/16" in clients and "10.0.0.0/24" in clients
    assert admission == {"w2": {"address": "10.0.0.4",
                                "exact": ["10.0.0.4 in site_worker_networks", "10.0.0.4/32 in site_postgresql_extra_clients"],
                                "networks": ["10.0.0.0/24 in site_postgresql_extra_clients"]}}


def test_a_staying_workers_own_address_entry_stays():
    common = {"site_worker_networks": ["10.0.0.3", "10.0.0.4"]}
    leaving = plan(cluster_plan.without_workers(inventory(SPLIT, common=common), ["w2"]))
    assert "10.0.0.3" in leaving["postgresql"]["result_backend_clients"]
    assert "10.0.0.4" not in leaving["postgresql"]["result_backend_clients"]


def test_a_leaving_worker_admitted_by_nothing_else():
    admission = cluster_plan.leaving_admission(inventory(SPLIT), ROLES, ["w2"])
    assert admission == {"w2": {"address": "10.0.0.4", "exact": [], "networks": []}}


def test_only_workers_can_leave():
    with pytest.raises(cluster_plan.PlanError, match="core cannot leave `workers`: not in it"):
        cluster_plan.without_workers(inventory(SPLIT), ["core"])


# --- --limit ----------------------------------------------------------------------------------

def test_limit_to_a_new_worker_notes_what_it_cannot_apply():
    groups = dict(SPLIT, workers=["w1", "w2", "w3"])
    result = plan(inventory(groups, play_hosts=["w3"], common={"site_firewall": True}))
    assert len(result["notes"]) == 1
    assert result["notes"][0].startswith("w3 (10.0.0.5) is admitted by data, core only after site.yml runs there")


def test_limit_to_a_worker_admitted_ahead_needs_no_note():
    groups = dict(SPLIT, workers=["w1", "w2", "w3"])
    result = plan(inventory(groups, play_hosts=["w3"], common={"site_worker_networks": ["10.0.0.0/24"]}))
    assert result["notes"] == []


def test_peers_to_address_under_limit():
    groups = dict(SPLIT, workers=["w1", "w2", "w3"])
    no_firewall = inventory(groups, play_hosts=["w3"], addresses={"w3": "10.0.0.5"}, common={"site_firewall": False})
    assert cluster_plan.peers_to_address(no_firewall, ROLES) == ["data", "core"]
    # The firewall is on by default: its rules name every host of the cluster.
    default = inventory(groups, play_hosts=["w3"], addresses={"w3": "10.0.0.5"})
    assert cluster_plan.peers_to_address(default, ROLES) == ["data", "core", "w1", "w2"]
    assert cluster_plan.peers_to_address(inventory(groups), ROLES) == []


# --- every error names the host, the variable and what is accepted ----------------------------

@pytest.mark.parametrize(("groups", "expected"), [
    (dict(SPLIT, redis=["data", "w1"]), "three or more under Redis Sentinel (has 2; two cannot elect"),
    (dict(SPLIT, postgresql=["data", "w1"]), "`postgresql` (has 2)"),
    (dict(SPLIT, scheduler=[]), "`scheduler` (0)"),
    (dict(SPLIT, api_server=[]), "`api_server` (0)"),
    (dict(SPLIT, workers=[]), "`workers` (0)"),
    (dict(SPLIT, monitoring=["w1", "w2"]), "at most one in `monitoring` (2)"),
])
def test_group_sizes(groups, expected):
    assert expected in one_error(inventory(groups))


def test_missing_address():
    data = inventory(SPLIT)
    data["hosts"]["data"]["address"] = None
    assert one_error(data).startswith("data have no default IPv4 address")


def test_worker_without_address_is_fine_without_firewall():
    data = inventory(SPLIT, common={"site_firewall": False})
    data["hosts"]["w2"]["address"] = None
    assert "w2" in plan(data)["hosts"]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("site_admin_networks", ["office"], "site_admin_networks must list IPv4/IPv6 addresses or CIDRs, not: office."),
    ("site_admin_networks", ["10.0.0.0/8\n"], "site_admin_networks must list IPv4/IPv6 addresses or CIDRs, not: '10.0.0.0/8\\n'."),
    ("site_worker_networks", ["10.0.0.300/8"], "site_worker_networks must list IPv4/IPv6 addresses or CIDRs, not: 10.0.0.300/8."),
    ("site_worker_networks", ["10.0.0.0/33"], "not: 10.0.0.0/33"),
    ("site_worker_networks", "10.0.0.0/8", "site_worker_networks must be a list"),
    ("site_postgresql_extra_clients", ["10.0.0.300/8"], "site_postgresql_extra_clients must list"),
    ("site_postgresql_extra_clients", ["all"], "not: all"),
    ("site_worker_batch", "0%", "site_worker_batch=0% must be a number of workers (1 or more) or a percentage"),
    ("site_worker_batch", 0, "site_worker_batch=0 must be"),
    ("site_worker_batch", "101%", "site_worker_batch=101% must be"),
    ("site_worker_batch", "2\n", "site_worker_batch=2\n must be"),
    ("site_tls_days", 20, "site_tls_days (20) must be more than site_tls_renew_days (30)"),
    ("site_tls_renew_days", 0, "site_tls_days (365) must be more than site_tls_renew_days (0), and that more than 0."),
    ("site_tls_cert", "/tmp/host.crt", "site_tls_cert needs site_tls_key (its key) and site_tls_ca_cert"),
    ("site_tls_ca_key", "/tmp/ca.key", "site_tls_ca_key needs site_tls_ca_cert"),
    ("site_tls_extra_names", ["airflow.example.com"], "site_tls_extra_names must list subject alternative names as DNS:"),
    ("site_api_server_host", "localhost", "site_api_server_host=localhost must be an address"),
    ("site_api_server_host", "127.0.0.1", "site_api_server_host=127.0.0.1 must be"),
    ("site_api_server_host", "::1", "site_api_server_host=::1 must be"),
    ("site_api_server_host", "0.0.0.0", "site_api_server_host=0.0.0.0 must be"),
    ("site_api_server_host", "lb.example.com\n", "must be an address or name every worker reaches"),
    ("site_postgresql_max_connections", 5, "site_postgresql_max_connections=5 must be a whole number of at least 20."),
    ("site_pgbouncer_max_client_conn", "many", "site_pgbouncer_max_client_conn=many must be a whole number of at least 10."),
    ("site_postgresql_max_connections", "lots", "site_postgresql_max_connections=lots must be"),
])
def test_bad_cluster_setting(name, value, expected):
    assert expected in one_error(inventory(SPLIT, common={name: value}))


def test_good_cluster_settings():
    good = {"site_admin_networks": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"], "site_worker_batch": "25%",
            "site_tls_cert": "/c", "site_tls_key": "/k", "site_tls_ca_cert": "/ca", "site_api_server_host": "lb.example.com",
            "site_tls_extra_names": ["DNS:airflow.example.com", "IP:192.0.2.10"]}
    assert plan(inventory(SPLIT, common=good))


def test_cluster_setting_set_differently_per_host():
    message = one_error(inventory(SPLIT, host_vars={"w1": {"site_firewall": False}}))
    assert message.startswith("site_firewall differs between hosts (True on data, core, w2; False on w1)")
    assert "set it once for all hosts (group_vars/all)" in message


@pytest.mark.parametrize(("host", "name", "value", "expected"), [
    ("data", "redis_port", "six", "data: redis_port=six must be a port (1-65535)."),
    ("data", "postgresql_port", 70000, "data: postgresql_port=70000 must be a port"),
    ("core", "flower_port", 0, "core: flower_port=0 must be a port"),
    ("w1", "worker_concurrency", "many", "w1: worker_concurrency=many must be a whole number from 1."),
    ("w1", "worker_concurrency", 0, "w1: worker_concurrency=0 must be"),
    ("core", "airflow_api_server_workers", True, "core: airflow_api_server_workers=True must be"),
    ("data", "postgresql_airflow_user", "Airflow-User", "data: postgresql_airflow_user=Airflow-User must be a lower-case identifier"),
])
def test_bad_role_input(host, name, value, expected):
    assert expected in one_error(inventory(SPLIT, host_vars={host: {name: value}}))


@pytest.mark.parametrize(("host_vars", "groups", "expected"), [
    ({"data": {"flower_port": 6379}}, dict(SPLIT, flower=["data"]), "data: redis_port and flower_port are all 6379; give each"),
    ({"core": {"airflow_api_server_port": 5555}}, SPLIT, "core: airflow_api_server_port and flower_port are all 5555"),
    ({"aio": {"airflow_api_server_port": 5432}}, ALL_IN_ONE, "aio: postgresql_port and airflow_api_server_port are all 5432"),
    ({"cl-broker": {"redis_exporter_port": 5555}}, CLUSTER, "cl-broker: redis_exporter_port and flower_port are all 5555"),
    ({"cl-db": {"prometheus_port": 9187}}, CLUSTER, "cl-db: postgresql_exporter_port and prometheus_port are all 9187"),
])
def test_port_clashes(host_vars, groups, expected):
    assert expected in one_error(inventory(groups, host_vars=host_vars, common={"site_allow_colocated_workers": True}))


@pytest.mark.parametrize(("groups", "shared"), [
    (ALL_IN_ONE, "`postgresql` and `scheduler` and `api_server`"),
    (dict(SPLIT, workers=["w1", "core"]), "`scheduler` and `api_server`"),
    (dict(SPLIT, workers=["w1", "data"], scheduler=["core"]), "`postgresql`"),
    (dict(SPLIT, api_server=["a1"], workers=["w1", "a1"]), "`api_server`"),
])
def test_a_worker_beside_the_database_or_control_plane_is_refused(groups, shared):
    host = [h for h in groups["workers"] if h not in ("w1", "w2")][0] if groups is not ALL_IN_ONE else "aio"
    message = one_error(inventory(groups))
    assert message.startswith(f"{host} is in `workers` and in {shared}: task code on a worker runs as `airflow`"), message
    assert message.endswith("or set site_allow_colocated_workers: true to accept it (a single-host test box).")


@pytest.mark.parametrize("value", [True, "yes", "true"])
def test_colocated_workers_pass_when_the_user_accepts_them(value):
    assert plan(inventory(ALL_IN_ONE, common={"site_allow_colocated_workers": value}))["hosts"]["aio"]["components"][-1] == "worker"


def test_a_worker_beside_the_broker_or_flower_needs_no_switch():
    """Workers hold the broker's password anyway; Flower holds nothing more than they do."""
    assert plan(inventory(dict(SPLIT, redis=["broker"], workers=["w1", "broker"], flower=["w1"])))


def test_exporter_ports_clash_only_with_monitoring():
    """Without a monitoring host the exporters do not run: their ports claim nothing."""
    assert plan(inventory(dict(SPLIT, flower=["data"]), host_vars={"data": {"redis_exporter_port": 5555, "flower_port": 5555}}))


@pytest.mark.parametrize(("host", "secret", "expected"), [
    ("data", "redis_password", "redis_password is not set for data, or refers to a vault variable that is not defined"),
    ("data", "postgresql_result_backend_password", "postgresql_result_backend_password is not set for data"),
    ("core", "airflow_jwt_secret", "airflow_jwt_secret is not set for core"),
    ("core", "flower_basic_auth", "flower_basic_auth is not set for core"),
    ("w1", "airflow_api_secret_key", "airflow_api_secret_key is not set for w1"),
])
def test_missing_secret(host, secret, expected):
    message = one_error(inventory(SPLIT, secrets={host: {secret: None}}))
    assert expected in message
    assert f'{secret}: "{{{{ vault_{secret} }}}}"' in message


def test_worker_needs_no_control_plane_secret():
    data = inventory(SPLIT, secrets={w: {"airflow_fernet_key": None, "airflow_jwt_secret": None,
                                         "airflow_admin_password": None} for w in ("w1", "w2")})
    assert plan(data)


def test_missing_secret_is_reported_once_on_its_owner():
    message = one_error(inventory(SPLIT, secrets={"data": {"redis_password": None}}))
    assert message.startswith("redis_password is not set for data")


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("airflow_redis_password", "another", "airflow_redis_password is set for w2 and differs from redis_password on data."),
    ("airflow_database_port", 5433, "airflow_database_port is set for w2 and differs from postgresql_pgbouncer_port on data."),
    ("airflow_result_backend_user", "other", "airflow_result_backend_user is set for w2 and differs from "
                                             "postgresql_result_backend_user on data."),
])
def test_airflow_copy_of_a_server_setting(name, value, expected):
    if "password" in name:
        data = inventory(SPLIT, secrets={"w2": {name: hashlib.sha256(value.encode()).hexdigest()}})
    else:
        data = inventory(SPLIT, host_vars={"w2": {name: value}})
    assert expected in one_error(data)


def test_airflow_copy_equal_to_the_server_setting_is_accepted():
    data = inventory(SPLIT, host_vars={"w2": {"airflow_database_port": "6432"}},
                     secrets={"w2": {"airflow_redis_password": SECRETS["redis_password"]}})
    assert plan(data)


def test_every_error_at_once():
    data = inventory(SPLIT, common={"site_worker_batch": "0", "site_admin_networks": ["office"]},
                     host_vars={"w1": {"worker_concurrency": "x"}}, secrets={"data": {"redis_password": None}})
    assert len(errors(data)) == 4


def test_an_address_that_is_not_an_ip():
    data = inventory(SPLIT)
    data["hosts"]["w1"]["address"] = "10.0.0.3\n"
    assert one_error(data).startswith("w1: its address '10.0.0.3\\n' is not an IPv4/IPv6 address.")


# --- the planner reads the roles' own files ------------------------------------------------------

def test_defaults_come_from_the_roles_argument_specs():
    for name, role in cluster_plan.ROLE_INPUTS.items():
        assert name in ROLES["defaults"][role], (name, role)
        assert ROLES["defaults"][role][name] is not None, name


def test_component_needs_cover_every_component():
    assert set(ROLES["component_needs"]) == {"api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"}


def test_plan_does_not_change_its_input():
    data = inventory(CLUSTER, common={"site_firewall": True})
    before = copy.deepcopy(data)
    plan(data)
    assert data == before


# --- the plan reproduces what the Jinja gave the hosts before it ----------------------------------

GOLDEN = ROOT / "tests" / "unit" / "golden"


def golden_inventory(name: str) -> dict:
    """A golden inventory as the action plugin would read it: every host gets the `all: vars:` and
    its own variables; addresses 10.1.0.10, .11, ... in order of appearance (as when the expected
    settings were recorded)."""
    raw = yaml.safe_load((GOLDEN / f"{name}.inventory.yml").read_text())["all"]
    common = raw.get("vars") or {}
    groups, own = {}, {}
    for group, body in raw["children"].items():
        for host, variables in ((body or {}).get("hosts") or {}).items():
            groups.setdefault(group, []).append(host)
            own.setdefault(host, {}).update(variables or {})
    members = cluster_plan.unique(host for hosts in groups.values() for host in hosts)
    secret_names = set(cluster_plan.secret_names(ROLES))
    hosts = {}
    for number, host in enumerate(members, start=10):
        variables = dict(common, **own.get(host, {}))
        hosts[host] = {"address": f"10.1.0.{number}",
                       "vars": {k: v for k, v in variables.items() if k not in secret_names},
                       "secrets": {k: hashlib.sha256(str(v).encode()).hexdigest() for k, v in variables.items()
                                   if k in secret_names}}
    return {"groups": groups, "hosts": hosts, "play_hosts": members}, common


def effective(result: dict, host: str, common: dict) -> dict:
    """The inputs playbooks/vars/site.yml hands a host from the plan (its one-line mappings)."""
    mine = result["hosts"][host]
    tls_ca = "/etc/airflow-ops/tls/ca.crt" if result["tls"] else ""
    flower, postgresql = result["prometheus_flower_target"], result["prometheus_postgresql_target"]
    # The passwords (site.yml derives the exporter's, takes Flower's from flower_basic_auth) are left out here.
    targets = result["prometheus_targets"] + ([dict(postgresql, ca_file=tls_ca)] if postgresql else []) + (
        [dict(flower, ca_file=tls_ca, username=str(common["flower_basic_auth"]).split(":", 1)[0])] if flower else [])
    return {
        "airflow_redis_host": result["broker"]["address"], "airflow_redis_port": result["broker"]["port"],
        "airflow_database_host": result["database"]["address"], "airflow_database_backup_host": result["database"]["host"],
        "airflow_database_port": result["database"]["port"], "airflow_database_name": result["database"]["name"],
        "airflow_database_user": result["database"]["user"], "airflow_result_backend_name": result["result_backend"]["name"],
        "airflow_result_backend_user": result["result_backend"]["user"], "airflow_api_server_host": result["api_server"]["address"],
        "airflow_components": mine["airflow_components"], "airflow_db_clean": mine["db_clean"],
        "_airflow_common_components": mine["components"],
        "postgresql_airflow_clients": result["postgresql"]["airflow_clients"],
        "postgresql_result_backend_clients": result["postgresql"]["result_backend_clients"],
        "postgresql_max_connections": result["postgresql"]["max_connections"],
        "__site_tls": result["tls"], "__site_tls_names": mine["tls_names"],
        "redis_exporter_enabled": result["monitoring"]["enabled"], "postgresql_exporter_enabled": result["monitoring"]["enabled"],
        "airflow_statsd_host": result["statsd"]["host"], "airflow_statsd_port": result["statsd"]["port"],
        "prometheus_targets": targets, "__site_firewall": result["firewall"], "firewall_rules": mine["firewall_rules"],
    }


@pytest.mark.parametrize("name", sorted(path.name.split(".")[0] for path in GOLDEN.glob("*.inventory.yml")))
def test_plan_reproduces_the_settings_the_jinja_gave(name):
    """Every input the site playbook derived, per host, equals what the Jinja of playbooks/vars/site.yml
    computed for the same inventory before the plan (recorded in <name>.expected.json), plus what the
    plan added since: the rule of the triggerer's log server (8794, the api servers)."""
    data, common = golden_inventory(name)
    # Recorded before PgBouncer (site_pgbouncer) and the connection budget (db_budget.py, its own tests):
    # the rest must be as it was.
    for entry in data["hosts"].values():
        entry["vars"]["site_pgbouncer"] = False
    result = plan(data)
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    assert sorted(expected) == sorted(result["hosts"])
    for host, settings in expected.items():
        mine = effective(result, host, common)
        mine.pop("postgresql_max_connections")
        settings = {k: v for k, v in settings.items() if k != "postgresql_max_connections"}
        if not result["monitoring"]["enabled"]:
            # Without a monitoring host no Prometheus reads the targets (the Jinja computed them anyway).
            settings = {k: v for k, v in settings.items() if k != "prometheus_targets"}
            mine.pop("prometheus_targets")
        assert mine == settings, host


def test_golden_shapes_cover_tls_firewall_monitoring_and_overrides():
    shapes = {name: golden_inventory(name)[1] for name in ("prod", "split-tls-firewall", "demo", "all-in-one")}
    assert shapes["prod"]["site_tls"] and shapes["prod"]["site_firewall"] and "site_api_server_host" in shapes["prod"]
    assert not shapes["demo"].get("site_tls") and not shapes["demo"].get("site_firewall")


def test_each_airflow_host_logs_in_to_the_broker_as_the_user_of_its_components():
    """plugins/plugin_utils/redis_acl.py: scheduler hosts as `scheduler`, worker hosts as `worker`,
    a Flower-only host as `flower`; a host without a broker client as no one."""
    hosts = plan(inventory(SPLIT))["hosts"]
    assert {host: hosts[host]["broker_user"] for host in hosts} == {"data": "", "core": "scheduler", "w1": "worker", "w2": "worker"}
    monitored = plan(inventory(dict(SPLIT, flower=["data"], monitoring=["data"])))["hosts"]
    assert monitored["data"]["broker_user"] == "flower"


def test_an_inventory_may_not_choose_a_hosts_broker_user():
    message = one_error(inventory(SPLIT, host_vars={"w1": {"airflow_redis_user": "admin"}}))
    assert message.startswith("airflow_redis_user is set for w1 to 'admin'; site.yml logs its worker component(s) in "
                              "to the broker as 'worker'")
    assert plan(inventory(SPLIT, host_vars={"w1": {"airflow_redis_user": "worker"}}))


def test_an_unencrypted_ca_key_in_a_git_work_tree_that_keeps_it_is_named():
    """site_tls makes the CA on the controller: unencrypted, inside a repository that would commit
    it, the run says so (the action plugin asks git; the rule is here)."""
    notes = cluster_plan.ca_key_notes("/srv/ops/inventories/x/tls/ca.key", False, "/srv/ops", False)
    assert len(notes) == 1 and notes[0].startswith("The cluster CA key /srv/ops/inventories/x/tls/ca.key is not encrypted")
    assert "site_tls_ca_passphrase" in notes[0] and "/srv/ops" in notes[0]
    assert cluster_plan.ca_key_notes("/srv/ops/tls/ca.key", True, "/srv/ops", False) == []  # encrypted
    assert cluster_plan.ca_key_notes("/srv/ops/tls/ca.key", False, "/srv/ops", True) == []  # git-ignored
    assert cluster_plan.ca_key_notes("/etc/ops/tls/ca.key", False, None, False) == []  # no repository


# --- DAG bundles ---------------------------------------------------------------------------------

def test_the_scheduler_and_worker_hosts_must_list_the_same_dag_bundles():
    git = {"name": "team", "repo_url": "git@git:dags.git", "ssh_private_key": "digest-1"}
    same = {"airflow_dag_bundles": [{"name": "dags-folder", "kind": "local"}, git]}
    assert plan(inventory(SPLIT, common=same))
    other_key = {"w2": {"airflow_dag_bundles": [{"name": "dags-folder", "kind": "local"}, dict(git, ssh_private_key="digest-2")]}}
    text = one_error(inventory(SPLIT, common=same, host_vars=other_key))
    assert text.startswith("airflow_dag_bundles differs between the scheduler and worker hosts ([dags-folder, team] on core, w1;"
                           " [dags-folder, team] on w2;")
    assert "digest" not in text
    unset = {"w1": {"airflow_dag_bundles": None}}
    assert "[the role default] on w1" in one_error(inventory(SPLIT, common=same, host_vars=unset))
    # Left unset on one host and [] on another: both the role default.
    assert plan(inventory(SPLIT, host_vars={"w1": {"airflow_dag_bundles": []}}))


def test_hosts_that_never_clone_may_leave_dag_bundles_out():
    # the api server, broker and database hosts do not build bundles
    shape = dict(SPLIT, api_server=["api"])
    data = inventory(shape, common={}, host_vars={host: {"airflow_dag_bundles": [{"name": "x", "kind": "local"}]}
                                                  for host in ("core", "w1", "w2")})
    assert plan(data)


def test_a_cluster_moving_to_pgbouncer_keeps_its_clients_admitted_directly_for_that_run():
    """A cluster set up before PgBouncer (database_before "direct"): the run that turns it on changes the
    clients' airflow.cfg after the database's rules, so PostgreSQL (pg_hba and the firewall) keeps admitting
    them directly for that run, and says so; the next run (PgBouncer found) admits only the migrating host."""
    data = inventory(SPLIT)
    moving = plan(dict(data, database_before="direct"))
    assert moving["postgresql"]["clients_moving"] is True
    assert moving["postgresql"]["direct_clients"] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    rules = {rule["port"]: rule["sources"] for rule in moving["hosts"]["data"]["firewall_rules"]}
    assert rules[5432] == rules[6432] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert [note for note in moving["notes"] if note.startswith("PgBouncer is new on data: PostgreSQL keeps admitting")]
    for before in ("new", "pooled"):
        settled = plan(dict(data, database_before=before))
        assert settled["postgresql"]["clients_moving"] is False and settled["postgresql"]["direct_clients"] == ["10.0.0.2"]
        assert settled["notes"] == []
    direct = plan(dict(inventory(SPLIT, common={"site_pgbouncer": False}), database_before="direct"))
    assert direct["postgresql"]["clients_moving"] is False and direct["postgresql"]["direct_clients"] == []


def test_a_cluster_leaving_pgbouncer_keeps_it_serving_until_the_last_play():
    """site_pgbouncer turned off on a cluster that ran it (database_before "pooled"): the clients move to
    PostgreSQL in the Airflow plays, after the database's, so PgBouncer keeps serving and its port stays
    open for that run (site.yml's last play stops it), while PostgreSQL already admits every client."""
    off = inventory(SPLIT, common={"site_pgbouncer": False})
    leaving = plan(dict(off, database_before="pooled"))
    assert leaving["postgresql"]["pgbouncer"]["leaving"] is True and leaving["postgresql"]["pgbouncer"]["enabled"] is False
    assert leaving["database"]["port"] == 5432
    rules = {rule["port"]: rule["sources"] for rule in leaving["hosts"]["data"]["firewall_rules"]}
    assert rules[5432] == rules[6432] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert [note for note in leaving["notes"] if note.startswith("PgBouncer is turned off on data: it keeps serving")]
    for before in ("new", "direct"):
        gone = plan(dict(off, database_before=before))
        assert gone["postgresql"]["pgbouncer"]["leaving"] is False and gone["notes"] == []
        assert 6432 not in {rule["port"] for rule in gone["hosts"]["data"]["firewall_rules"]}
    assert plan(dict(inventory(SPLIT), database_before="pooled"))["postgresql"]["pgbouncer"]["leaving"] is False


# --- Redis Sentinel (three or more broker hosts) -------------------------------------------------

SENTINEL = dict(SPLIT, redis=["r1", "r2", "r3"], monitoring=["core"])


def test_three_broker_hosts_run_sentinel_and_the_clients_ask_every_sentinel():
    result = plan(inventory(SENTINEL, common={"site_tls": True, "site_firewall": True}))
    addresses = {name: host["address"] for name, host in result["hosts"].items()}
    broker = result["broker"]
    assert broker["sentinel"] and broker["master_name"] == "airflow" and broker["host"] == "r1"
    assert broker["sentinels"] == [f"{addresses[h]}:26379" for h in ("r1", "r2", "r3")]
    for host in ("r1", "r2", "r3"):
        mine = result["hosts"][host]
        assert mine["redis_replication_hosts"] == [{"name": h, "address": addresses[h]} for h in ("r1", "r2", "r3")]
        others = {addresses[h] for h in ("r1", "r2", "r3") if h != host}
        # Sentinel and replication: each broker host from the other two; the Airflow hosts reach both ports
        for port in (6379, 26379):
            sources = served_by(result, host, port)[0]["sources"]
            assert others <= set(sources) and addresses[host] not in sources
            assert {addresses["core"], addresses["w1"], addresses["w2"]} <= set(sources)
        assert {"input": "redis_sentinel_port", "port": 26379} in mine["listen"]
        assert mine["tls_services"][:1] == ["redis"] and mine["tls_services"].count("redis") == 1
    assert result["hosts"]["w1"]["redis_replication_hosts"] == []
    assert result["prometheus_targets"][0]["targets"] == [f"{addresses[h]}:9121" for h in ("r1", "r2", "r3")]


def test_one_broker_host_stays_a_single_redis():
    result = plan(inventory(SPLIT, common={"site_firewall": True}))
    assert not result["broker"]["sentinel"] and result["broker"]["sentinels"] == []
    assert result["hosts"]["data"]["redis_replication_hosts"] == []
    assert 26379 not in [rule["port"] for rule in result["hosts"]["data"]["firewall_rules"]]


def test_broker_hosts_of_different_releases_are_refused():
    data = inventory(SENTINEL)
    for host, release in (("r1", "Debian 12"), ("r2", "Debian 12"), ("r3", "Debian 13")):
        data["hosts"][host]["release"] = release
    assert one_error(data) == ("The `redis` hosts run different releases (Debian 12 on r1, r2; Debian 13 on r3): each "
                               "ships its own Redis, and a replica must load its primary's data. Put hosts of one release "
                               "into `redis`.")


def test_the_broker_hosts_share_their_password_and_ports():
    data = inventory(SENTINEL, host_vars={"r3": {"redis_sentinel_port": 26380}},
                     secrets={"r2": {"redis_password": "another digest"}})
    found = errors(data)
    assert found[0].startswith("redis_sentinel_port differs between the `redis` hosts (the same value on each of: r1, r2; r3)")
    assert found[1].startswith("redis_password differs between the `redis` hosts (the same value on each of: r1, r3; r2)")
