"""Bad input stops the role with a message naming the variable, before anything changes.

The checks do not depend on the distribution: one host is enough. Every case is a host of its own
in one run of the role (run_role_cases).
"""

import pytest

from airflow_ops_testlib import assert_case_refused, run_role_cases

HOST = "redis-debian12"
testinfra_hosts = [f"ansible://{HOST}"]

CASES = {
    "no-password": ({}, "missing required arguments: redis_password"),
    "short-password": ({"redis_password": "Sh0rt!", "redis_port": 6379}, "redis_password must be at least 12 characters"),
    "port-not-a-number": ({"redis_password": "long-enough-Secret-1", "redis_port": "six-three-seven-nine"}, "redis_port"),
    "bad-maxmemory": ({"redis_password": "long-enough-Secret-1", "redis_maxmemory": "lots"}, "redis_maxmemory=lots"),
    "extra-config-appendonly": ({"redis_password": "long-enough-Secret-1", "redis_extra_config": {"appendonly": "no"}},
                                "redis_extra_config may not set appendonly"),
    "exporter-port-clash": ({"redis_password": "long-enough-Secret-1", "redis_exporter_enabled": True, "redis_exporter_port": 6379},
                            "redis_exporter_port=6379 (1-65535, not redis_port 6379)"),
}


@pytest.fixture(scope="module")
def refused():
    return run_role_cases("redis", HOST, {case: inputs for case, (inputs, _unused) in CASES.items()})


@pytest.mark.parametrize("case", CASES)
def test_invalid_input_fails_clearly_before_any_change(refused, case):
    inputs, expected = CASES[case]
    assert_case_refused(refused, HOST, case, inputs, expected)
