"""Bad input stops the role with a message naming the variable, before anything changes.

The checks do not depend on the distribution: one host is enough.
"""

import pytest

from airflow_ops_testlib import assert_no_secret_printed, run_role

testinfra_hosts = ["ansible://redis-debian12"]


@pytest.mark.parametrize(
    ("bad_input", "expected"),
    [
        ({}, "missing required arguments: redis_password"),
        ({"redis_password": "Sh0rt!", "redis_port": 6379}, "redis_password must be at least 12 characters"),
        ({"redis_password": "long-enough-Secret-1", "redis_port": "six-three-seven-nine"}, "redis_port"),
        ({"redis_password": "long-enough-Secret-1", "redis_maxmemory": "lots"}, "redis_maxmemory=lots"),
        ({"redis_password": "long-enough-Secret-1", "redis_extra_config": {"appendonly": "no"}}, "redis_extra_config may not set appendonly"),
        ({"redis_password": "long-enough-Secret-1", "redis_exporter_enabled": True, "redis_exporter_port": 6379},
         "redis_exporter_port=6379 (1-65535, not redis_port 6379)"),
    ],
)
def test_invalid_input_fails_clearly_before_any_change(bad_input, expected):
    result = run_role("redis", "redis-debian12", bad_input)
    assert result.returncode != 0, result.output
    assert expected in result.output
    assert result.changed == 0, result.output
    assert_no_secret_printed(bad_input, result.output)
