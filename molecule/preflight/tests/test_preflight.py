"""Bad input for site.yml stops in the first play, on fresh hosts, before anything is installed.

Each case adds one inventory fragment (what a user would write) on top of the scenario's valid
inventory and runs the whole site.yml. It must fail with a message that names the variable at
fault, report no change, leave both hosts as fresh as they were (no Redis, PostgreSQL or Airflow
installed), and never print a secret it was given. As none may change anything, the cases run
four at a time (the first test to need a result starts them all).

The message of every check is a unit test (tests/unit: cluster_plan, role_inputs, airflow_inputs).
The cases here are one of each way a check reaches the user: the groups, a secret from a missing
vault variable, a secret that must not be printed, a role's own check, the argument spec's type
check, a cross-host rule, a controller file, the address parser and the port plan.
"""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_ops_testlib import molecule_host, run_playbook

testinfra_hosts = ["ansible://pf-one"]

SITE = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], "site.yml")
HOSTS = ["pf-one", "pf-two"]  # pf-one: redis, postgresql, scheduler, api_server, flower; pf-two: workers


def host_vars(host, **variables):
    """An inventory fragment setting variables (YAML values) on one host."""
    body = "".join(f"      {name}: {value}\n" for name, value in variables.items())
    return f"all:\n  hosts:\n    {host}:\n{body}"


def cluster_vars(**variables):
    """The same variables on every host. Host variables of an inventory file outrank the scenario's
    group_vars/all, where `all: vars:` of a second inventory would not."""
    return "all:\n  hosts:\n" + "".join(
        f"    {host}:\n" + "".join(f"      {name}: {value}\n" for name, value in variables.items()) for host in HOSTS
    )


def in_group(group, host):
    return f"all:\n  children:\n    {group}:\n      hosts:\n        {host}:\n"


UNDEFINED_VAULT = "'{{ vault_not_defined_anywhere }}'"

# (id, inventory fragment, text the failure must contain, secret value that must not be printed)
CASES = [
    ("two-brokers", in_group("redis", "pf-two"), "three or more under Redis Sentinel (has 2; two cannot elect a new primary", None),
    ("redis-password-from-missing-vault", host_vars("pf-one", redis_password=UNDEFINED_VAULT),
     "redis_password is not set for pf-one, or refers to a vault variable that is not defined", None),
    ("redis-password-short", host_vars("pf-one", redis_password="Sh0rt-redis"), "redis_password must be at least 12 characters", "Sh0rt-redis"),
    ("postgresql-user-not-identifier", host_vars("pf-one", postgresql_airflow_user="Airflow-User"), "postgresql_airflow_user=Airflow-User", None),
    ("fernet-key-list-with-a-bad-key", cluster_vars(airflow_fernet_key="'R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=,Sh0rt-old-key'"),
     "airflow_fernet_key must be a Fernet key", "R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=,Sh0rt-old-key"),
    ("jwt-secret-missing-on-control-plane", host_vars("pf-one", airflow_jwt_secret=UNDEFINED_VAULT),
     "airflow_jwt_secret is not set for pf-one", None),
    ("airflow-version-without-lock", cluster_vars(airflow_version='9.9.9'), "No lock file airflow-9.9.9-python3.", None),
    ("installer-unknown", cluster_vars(airflow_installer='conda'), "airflow_installer", None),
    ("admin-network-not-an-address", cluster_vars(site_firewall='true', site_admin_networks="['office']"),
     "site_admin_networks must list IPv4/IPv6 addresses or CIDRs, not: office.", None),
    ("broker-password-set-twice", host_vars("pf-two", airflow_redis_password="another-broker-Secret-2"),
     "airflow_redis_password is set for pf-two and differs from redis_password on pf-one", "another-broker-Secret-2"),
    ("worker-queue-name-bad", host_vars("pf-two", worker_queues="['bad queue']"), "worker_queues=", None),
    ("flower-port-is-redis-port", host_vars("pf-one", flower_port=6379), "redis_port and flower_port are all 6379", None),
    # The connection budget (plugins/plugin_utils/db_budget.py): too small a max_connections, with the sum.
    ("connections-over-budget", cluster_vars(site_postgresql_max_connections=30),
     "site_postgresql_max_connections=30 is too small: PgBouncer's pools", None),
    ("worker-memory-bound-bad", host_vars("pf-two", worker_memory_max="'2 GB'"), "worker_memory_max='2 GB' must be a memory size", None),
    # A second airflow.cfg line smuggled into a value (the YAML escape \n is a line feed).
    ("extra-config-line-feed", host_vars("pf-one", airflow_extra_config='{core: {parallelism: "32\\nload_examples = True"}}'),
     "airflow_extra_config on pf-one holds a carriage return, line feed or NUL", "load_examples"),
]


def run_site_with(fragment, *args):
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp, "extra.yml")
        extra.write_text(fragment)
        return run_playbook(str(SITE), "-i", str(extra), *args, timeout=600)


def assert_hosts_untouched():
    for name in HOSTS:
        host = molecule_host(name)
        installed = host.run("dpkg-query -W -f '${Package} ${Status}\\n' redis-server postgresql python3-venv 2>/dev/null")
        assert "install ok installed" not in installed.stdout, f"{name}: {installed.stdout}"
        for path in ("/opt/airflow", "/etc/airflow", "/etc/redis", "/etc/systemd/system/airflow-worker.service"):
            assert not host.file(path).exists, f"{name}: {path} exists"


@pytest.fixture(scope="module")
def bad_runs():
    """{case name: its site.yml run}; the runs overlap, four at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([case[0] for case in CASES], pool.map(run_site_with, [case[1] for case in CASES])))


def test_cases_have_distinct_names():
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "fragment", "expected", "secret"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_fails_before_any_change(bad_runs, name, fragment, expected, secret):
    result = bad_runs[name]
    assert result.returncode != 0, result.output[-3000:]
    assert expected in " ".join(result.output.split()), result.output[-3000:]
    assert result.changed == 0, result.output[-3000:]
    # Only the preflight play ran: no task of a role's install or configure phase.
    assert result.plays_that_ran_tasks() == {"Check the inventory and every input before changing anything"}, result.output[-3000:]
    if secret:
        assert secret in fragment  # the input really carried the secret
        assert secret not in result.output
    assert_hosts_untouched()


def test_a_worker_needs_no_control_plane_secret():
    """Least privilege reaches the inventory: a worker host given none of the control plane's
    secrets (Fernet key, JWT secret, admin password left empty) passes the preflight."""
    fragment = host_vars("pf-two", airflow_fernet_key="''", airflow_jwt_secret="''", airflow_admin_password="''")
    result = run_site_with(fragment, "--tags", "site_preflight")
    assert result.returncode == 0, result.output[-5000:]
    assert result.changed == 0, result.output[-5000:]


def test_check_mode_on_fresh_hosts_succeeds_and_installs_nothing():
    """site.yml --check on the fresh hosts with a monitoring host, TLS and the firewall on as an
    inventory gets them without asking (what the cluster scenario converges): every play runs in
    check mode, predicts the install, and changes nothing on the hosts."""
    result = run_site_with(in_group("monitoring", "pf-two"), "--check")
    assert result.returncode == 0, result.output[-5000:]
    assert result.changed > 0, result.output[-5000:]
    for play in ("Host certificates", "Network policy", "Redis broker", "Airflow", "Celery workers, a batch at a time",
                 "Monitoring"):
        assert play in result.plays_that_ran_tasks(), play
    assert_hosts_untouched()


def test_valid_inventory_passes_the_preflight_and_changes_nothing():
    """`--tags site_preflight` runs only the checks: the scenario's inventory passes them."""
    result = run_site_with("all:\n  vars: {}\n", "--tags", "site_preflight")
    assert result.returncode == 0, result.output[-5000:]
    assert result.changed == 0, result.output[-5000:]
    assert set(result.results_of("Plan the cluster and check the inventory").values()) == {"ok"}
    assert_hosts_untouched()
