"""Bad input for site.yml stops in the first play, on fresh hosts, before anything is installed.

Each case adds one inventory fragment (what a user would write) on top of the scenario's valid
inventory and runs the whole site.yml. It must fail with a message that names the variable at
fault, report no change, leave both hosts as fresh as they were (no Redis, PostgreSQL or Airflow
installed), and never print a secret it was given. As none may change anything, the cases run
four at a time (the first test to need a result starts them all).
"""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import testinfra

from airflow_ops_testlib import run_playbook

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
    ("two-brokers", in_group("redis", "pf-two"), "exactly one host in `redis` (has 2)", None),
    ("two-databases", in_group("postgresql", "pf-two"), "`postgresql` (has 2)", None),
    ("redis-password-from-missing-vault", host_vars("pf-one", redis_password=UNDEFINED_VAULT),
     "redis_password is not set for pf-one, or refers to a vault variable that is not defined", None),
    ("redis-password-short", host_vars("pf-one", redis_password="Sh0rt-redis"), "redis_password must be at least 12 characters", "Sh0rt-redis"),
    ("redis-port-not-a-number", host_vars("pf-one", redis_port="six"), "redis_port", None),
    ("redis-maxmemory-bad", host_vars("pf-one", redis_maxmemory="lots"), "redis_maxmemory=lots", None),
    ("redis-bind-empty-entry", host_vars("pf-one", redis_bind="['']"), "redis_bind=", None),
    ("redis-extra-config-appendonly", host_vars("pf-one", redis_extra_config="{appendonly: 'no'}"),
     "redis_extra_config may not set appendonly", None),
    ("redis-extra-config-eviction", host_vars("pf-one", redis_extra_config="{maxmemory-policy: allkeys-lru}"),
     "redis_extra_config may not set maxmemory-policy", None),
    ("postgresql-password-empty", host_vars("pf-one", postgresql_airflow_password="''"), "postgresql_airflow_password", None),
    ("postgresql-password-short", host_vars("pf-one", postgresql_airflow_password="Sh0rt-pg-pw"),
     "postgresql_airflow_password must be at least 12 characters", "Sh0rt-pg-pw"),
    ("postgresql-user-not-identifier", host_vars("pf-one", postgresql_airflow_user="Airflow-User"), "postgresql_airflow_user=Airflow-User", None),
    ("postgresql-shared-buffers-bad", host_vars("pf-one", postgresql_shared_buffers="lots"), "postgresql_shared_buffers=lots", None),
    ("extra-clients-bad-cidr", cluster_vars(site_postgresql_extra_clients="['10.0.0.300/8']"),
     "site_postgresql_extra_clients", None),
    ("fernet-key-bad", cluster_vars(airflow_fernet_key='Sh0rt-not-a-fernet-key'),
     "airflow_fernet_key must be a Fernet key", "Sh0rt-not-a-fernet-key"),
    ("fernet-key-list-with-a-bad-key", cluster_vars(airflow_fernet_key="'R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=,Sh0rt-old-key'"),
     "airflow_fernet_key must be a Fernet key", "R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=,Sh0rt-old-key"),
    ("fernet-key-list-with-a-space", cluster_vars(
        airflow_fernet_key="'R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=, YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o='"),
     "airflow_fernet_key must be a Fernet key", "R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo="),
    ("log-retention-negative", cluster_vars(airflow_log_retention_days="-7"), "airflow_log_retention_days=-7 must be a number of days", None),
    ("db-retention-not-a-number", cluster_vars(airflow_db_retention_days="ninety"), "airflow_db_retention_days", None),
    ("result-retention-below-longest-task", cluster_vars(airflow_longest_task="90000", airflow_celery_visibility_timeout="100000"),
     "airflow_celery_result_retention_days=1 must cover airflow_longest_task=90000", None),
    ("jwt-secret-short", cluster_vars(airflow_jwt_secret='Sh0rt-jwt'), "airflow_jwt_secret must be at least 16 characters", "Sh0rt-jwt"),
    ("api-secret-key-from-missing-vault", host_vars("pf-two", airflow_api_secret_key=UNDEFINED_VAULT),
     "airflow_api_secret_key is not set for pf-two", None),
    ("admin-password-short", cluster_vars(airflow_admin_password='Sh0rt-admin'),
     "airflow_admin_password must be at least 12 characters", "Sh0rt-admin"),
    ("jwt-secret-missing-on-control-plane", host_vars("pf-one", airflow_jwt_secret=UNDEFINED_VAULT),
     "airflow_jwt_secret is not set for pf-one", None),
    ("result-backend-password-missing", host_vars("pf-one", postgresql_result_backend_password=UNDEFINED_VAULT),
     "postgresql_result_backend_password is not set for pf-one", None),
    ("result-backend-login-is-metadata-login", host_vars("pf-one", postgresql_result_backend_user="airflow"),
     "postgresql_result_backend_user", None),
    ("user-password-short", cluster_vars(airflow_users="[{username: analyst, password: Sh0rt-user, role: Viewer}]"),
     "every user in airflow_users needs a password of at least 12 characters", "Sh0rt-user"),
    ("user-role-unknown", cluster_vars(airflow_users="[{username: analyst, password: analyst-Secret-12, role: Superuser}]"),
     "the role of every user in airflow_users must be one of Admin, Op, User, Viewer, Public", "analyst-Secret-12"),
    ("users-with-simple-auth-manager", cluster_vars(airflow_auth_manager="simple",
                                                   airflow_users="[{username: analyst, password: analyst-Secret-12, role: Viewer}]"),
     "airflow_users needs airflow_auth_manager=fab", "analyst-Secret-12"),
    ("airflow-version-malformed", cluster_vars(airflow_version="'3.3'"), "airflow_version=3.3 must be X.Y.Z", None),
    ("airflow-version-without-lock", cluster_vars(airflow_version='9.9.9'), "No lock file airflow-9.9.9-python3.", None),
    ("installer-unknown", cluster_vars(airflow_installer='conda'), "airflow_installer", None),
    ("wheelhouse-extras-beyond-the-lock", cluster_vars(airflow_install_source="wheelhouse", airflow_extras="[celery, fab, postgres, redis, statsd, amazon]"),
     "airflow_install_source=wheelhouse installs exactly what the lock pins, which is resolved for the extras celery,fab,postgres,redis,statsd; "
     "airflow_extras also asks for amazon", None),
    # site.yml points the Airflow hosts' StatsD at the monitoring host (pf-two here).
    ("monitoring-without-statsd-extra",
     cluster_vars(airflow_extras="[celery, fab, postgres, redis]") + in_group("monitoring", "pf-two").split("\n", 1)[1],
     "needs 'statsd' in airflow_extras", None),
    ("venvs-keep-zero", cluster_vars(airflow_venvs_keep='0'), "airflow_venvs_keep must be at least 1", None),
    ("worker-batch-zero", cluster_vars(site_worker_batch="'0%'"), "site_worker_batch=0% must be a number of workers", None),
    ("drain-timeout-zero", cluster_vars(airflow_worker_drain_timeout='0'), "airflow_worker_drain_timeout must be at least 1", None),
    ("admin-network-not-an-address", cluster_vars(site_firewall='true', site_admin_networks="['office']"),
     "site_admin_networks must list IPv4/IPv6 addresses or CIDRs, not: office.", None),
    ("tls-cert-without-key", cluster_vars(site_tls='true', site_tls_cert='/tmp/host.crt'),
     "site_tls_cert needs site_tls_key", None),
    ("tls-renewal-beyond-lifetime", cluster_vars(site_tls='true', site_tls_days='20'),
     "site_tls_days (20) must be more than site_tls_renew_days (30)", None),
    ("visibility-timeout-too-short", cluster_vars(airflow_celery_visibility_timeout='10'),
     "airflow_celery_visibility_timeout=10 must be at least 60", None),
    ("longest-task-beyond-visibility", cluster_vars(airflow_longest_task='30000'),
     "airflow_celery_visibility_timeout=21600 must exceed airflow_longest_task=30000", None),
    ("api-retries-beyond-heartbeat-timeout", cluster_vars(airflow_execution_api_retries='40'),
     "at most airflow_task_heartbeat_timeout=60: it must stop its task before the scheduler retries it elsewhere", None),
    ("api-server-host-localhost", cluster_vars(site_api_server_host='localhost'), "site_api_server_host", None),
    ("extra-config-not-sections", cluster_vars(airflow_extra_config='{core: parallelism}'),
     "airflow_extra_config must map sections", None),
    ("dags-src-missing", cluster_vars(airflow_dags_src='/nonexistent/dags'), "airflow_dags_src=/nonexistent/dags is not a directory", None),
    ("broker-password-set-twice", host_vars("pf-two", airflow_redis_password="another-broker-Secret-2"),
     "airflow_redis_password is set for pf-two and differs from redis_password on pf-one", "another-broker-Secret-2"),
    ("database-port-set-twice", host_vars("pf-two", airflow_database_port=5433),
     "airflow_database_port is set for pf-two and differs from postgresql_port on pf-one", None),
    ("worker-concurrency-not-a-number", host_vars("pf-two", worker_concurrency="many"), "worker_concurrency", None),
    ("worker-queue-name-bad", host_vars("pf-two", worker_queues="['bad queue']"), "worker_queues=", None),
    ("worker-stop-timeout-too-long", host_vars("pf-two", worker_stop_timeout=999999), "worker_stop_timeout=999999", None),
    ("flower-password-short", cluster_vars(flower_basic_auth="'ops:Sh0rt-flw'"), "flower_basic_auth must be", "Sh0rt-flw"),
    ("flower-port-is-redis-port", host_vars("pf-one", flower_port=6379), "redis_port and flower_port are all 6379", None),
    ("api-port-is-postgresql-port", cluster_vars(airflow_api_server_port='5432'),
     "postgresql_port and airflow_api_server_port are all 5432", None),
    # With a monitoring host (pf-two), site.yml turns the exporters on.
    ("redis-exporter-port-is-flower-port",
     host_vars("pf-one", redis_exporter_port=5555) + in_group("monitoring", "pf-two").split("\n", 1)[1],
     "redis_exporter_port and flower_port are all 5555", None),
]


def run_site_with(fragment, *args):
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp, "extra.yml")
        extra.write_text(fragment)
        return run_playbook(str(SITE), "-i", str(extra), *args, timeout=600)


def assert_hosts_untouched():
    for name in HOSTS:
        host = testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
        installed = host.run("dpkg-query -W -f '${Package} ${Status}\\n' redis-server postgresql python3-venv 2>/dev/null")
        assert "install ok installed" not in installed.stdout, f"{name}: {installed.stdout}"
        for path in ("/opt/airflow", "/etc/airflow", "/etc/redis", "/etc/systemd/system/airflow-worker.service"):
            assert not host.file(path).exists, f"{name}: {path} exists"


@pytest.fixture(scope="module")
def bad_runs():
    """{case name: its site.yml run}; the runs overlap, four at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([case[0] for case in CASES], pool.map(run_site_with, [case[1] for case in CASES])))


def test_cases_cover_enough_inputs():
    assert len(CASES) >= 25
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
    """site.yml --check on the fresh hosts, with TLS, the firewall and a monitoring host on (what
    the cluster scenario converges): every play runs in check mode, predicts the install, and
    changes nothing on the hosts."""
    fragment = (cluster_vars(site_tls="true", site_firewall="true")
                + in_group("monitoring", "pf-two").split("\n", 1)[1])
    result = run_site_with(fragment, "--check")
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
