"""The database connection budget (plugins/plugin_utils/db_budget.py): client ceilings per
component, PgBouncer's pools, PostgreSQL's max_connections, and the errors naming the numbers.
Pure Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import db_budget  # noqa: E402

CONTROL = ["scheduler", "dag-processor", "triggerer"]


def hosts(schedulers=1, api_servers=1, api_workers=2, workers=2, concurrency=16):
    found = {f"s{n}": {"components": list(CONTROL), "api_workers": 0, "concurrency": 0} for n in range(schedulers)}
    found.update({f"a{n}": {"components": ["api-server"], "api_workers": api_workers, "concurrency": 0} for n in range(api_servers)})
    found.update({f"w{n}": {"components": ["worker"], "api_workers": 0, "concurrency": concurrency} for n in range(workers)})
    return found


def test_the_pool_settings_counted_are_the_ones_airflow_cfg_gets():
    common = yaml.safe_load((ROOT / "roles" / "_airflow_common" / "vars" / "main.yml").read_text())
    assert common["__airflow_common_sql_pool_size"] == db_budget.POOL_SIZE
    assert common["__airflow_common_sql_max_overflow"] == db_budget.MAX_OVERFLOW
    template = (ROOT / "roles" / "_airflow_common" / "templates" / "airflow.cfg.j2").read_text()
    assert "'sql_alchemy_pool_size': __airflow_common_sql_pool_size" in template
    assert "'sql_alchemy_max_overflow': __airflow_common_sql_max_overflow" in template


@pytest.mark.parametrize("components, api_workers, concurrency, expected", [
    (CONTROL, 0, 0, {"metadata": 45, "result_backend": 15}),
    (["api-server"], 2, 0, {"metadata": 60, "result_backend": 0}),
    (["api-server"], 4, 0, {"metadata": 120, "result_backend": 0}),
    (["worker"], 0, 16, {"metadata": 0, "result_backend": 16}),
    (["flower"], 0, 0, {"metadata": 0, "result_backend": 0}),
    (CONTROL + ["api-server", "worker"], 1, 4, {"metadata": 75, "result_backend": 19}),
])
def test_what_each_host_may_open(components, api_workers, concurrency, expected):
    assert db_budget.host_clients(components, api_workers, concurrency) == expected


def test_the_pools_follow_the_control_plane_and_not_the_slots():
    one = db_budget.pools(hosts(workers=2, concurrency=16))
    many = db_budget.pools(hosts(workers=2, concurrency=256))
    assert one == many == {"metadata": 3 * 3 + 5 * 2, "result_backend": 5}
    assert db_budget.pools(hosts(workers=200))["result_backend"] == db_budget.RESULT_POOL_MAX
    assert db_budget.pools(hosts(schedulers=2, api_servers=2, api_workers=4))["metadata"] == 3 * 6 + 5 * 8


def test_a_pool_is_never_larger_than_its_clients():
    tiny = {"h": {"components": ["worker"], "api_workers": 0, "concurrency": 2}}
    assert db_budget.pools(tiny) == {"metadata": 0, "result_backend": 2}


def test_behind_pgbouncer_max_connections_stays_at_its_fixed_default():
    for workers in (1, 10, 100):
        result = db_budget.budget(hosts(workers=workers, concurrency=32), pgbouncer=True)
        assert result["max_connections"] == db_budget.POOLED_MAX_CONNECTIONS, workers
        assert result["errors"] == []
        assert result["max_client_conn"] >= result["client_total"]


def test_without_pgbouncer_max_connections_grows_with_every_slot():
    small = db_budget.budget(hosts(workers=2), pgbouncer=False)
    big = db_budget.budget(hosts(workers=20), pgbouncer=False)
    # s0 60, a0 60, 2 x 16 = 152 (+ 13) -> 200; 20 x 16 + 120 = 440 (+ 13) -> 500
    assert (small["client_total"], small["max_connections"]) == (152, 200)
    assert (big["client_total"], big["max_connections"]) == (440, 500)
    assert small["max_client_conn"] == 0 and small["pools"] == {}


def test_pgbouncer_needs_at_most_a_quarter_of_the_server_connections():
    for workers, concurrency in ((3, 16), (10, 32), (50, 16)):
        direct = db_budget.budget(hosts(workers=workers, concurrency=concurrency), pgbouncer=False)
        pooled = db_budget.budget(hosts(workers=workers, concurrency=concurrency), pgbouncer=True)
        assert pooled["server"] * 4 <= direct["server"], (workers, concurrency)


def test_a_given_max_connections_below_the_need_is_refused_with_the_sum():
    result = db_budget.budget(hosts(), pgbouncer=True, max_connections=30)
    assert result["errors"] == [
        "site_postgresql_max_connections=30 is too small: PgBouncer's pools (metadata 19 + result backend 5 + reserve 6) 30 + "
        "10 direct + 3 superuser reserved = 43. Set it to at least 43, or leave it unset (100)."]
    assert db_budget.budget(hosts(), pgbouncer=True, max_connections=43)["errors"] == []
    direct = db_budget.budget(hosts(), pgbouncer=False, max_connections=100)["errors"]
    assert len(direct) == 1 and "152 + 10 direct + 3 superuser reserved = 165. Set it to at least 165" in direct[0]


def test_a_given_client_limit_below_the_clients_is_refused_with_each_host():
    result = db_budget.budget(hosts(workers=1), pgbouncer=True, max_client_conn=100)
    assert result["errors"] == [
        "site_pgbouncer_max_client_conn=100 is below the 136 connections the Airflow hosts may open (s0 60, a0 60, w0 16). "
        "Set it to at least 136, or leave it unset (200)."]


def test_a_client_limit_beyond_pgbouncers_file_descriptors_is_refused():
    result = db_budget.budget(hosts(), pgbouncer=True, max_client_conn=65500)
    assert len(result["errors"]) == 1 and "more file descriptors than PgBouncer's unit allows (65536)" in result["errors"][0]


def test_hosts_that_open_nothing_are_left_out_of_the_spread():
    data = dict(hosts(workers=1), f0={"components": ["flower"], "api_workers": 0, "concurrency": 0})
    assert "f0" not in db_budget.budget(data, pgbouncer=True)["clients"]


@pytest.mark.parametrize("number, rounded", [(1, 100), (100, 100), (101, 200), (465, 500)])
def test_round_up(number, rounded):
    assert db_budget.round_up(number) == rounded
