"""The shared Airflow input checks (plugins/plugin_utils/airflow_inputs.py): the role's real defaults
pass, and each bad input gives its message. Pure Python: no hosts, no Ansible."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import airflow_inputs  # noqa: E402

COMMON = ROOT / "roles" / "_airflow_common"
DEFAULTS = yaml.safe_load((COMMON / "defaults" / "main.yml").read_text())
VARS = yaml.safe_load((COMMON / "vars" / "main.yml").read_text())
NEEDS, NEED_SECRETS = VARS["__airflow_common_component_needs"], VARS["__airflow_common_need_secrets"]
LOCK_EXTRAS = airflow_inputs.lock_extras((COMMON / "files" / "constraints" / f"airflow-{DEFAULTS['airflow_version']}.in").read_text())

VALID = dict(
    {name: DEFAULTS[name] for name in airflow_inputs.INPUTS if name in DEFAULTS},
    airflow_redis_password="unit-broker-Secret-1",
    airflow_database_password="unit-db-Secret-1",
    airflow_result_backend_password="unit-results-Secret-1",
    airflow_fernet_key="YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    airflow_api_secret_key="unit-api-secret-key-1-6d1f8b3e9a4c",
    airflow_jwt_secret="unit-jwt-secret-key-1-2f7a4c9e1b6d3f8a5c0e7b2d9f4a1c6e3b8d5f0a7c2e9b4d",
    airflow_admin_password="unit-Admin-Secret-1",
    airflow_api_server_host="10.0.0.2",
    airflow_database_host="10.0.0.1",
    airflow_database_backup_host="db1",
)
ALL = ["scheduler", "dag-processor", "triggerer", "api-server"]


def context(components=None, **facts):
    components = ALL if components is None else components
    needs = list(dict.fromkeys(need for component in components for need in NEEDS[component]))
    facts = dict({"python_minor": "3.11", "architecture": "x86_64", "lock_extras": LOCK_EXTRAS}, **facts)
    return airflow_inputs.Context("h1", components, needs, NEED_SECRETS, **facts)


def check(components=None, ctx=None, **changes):
    return airflow_inputs.check(dict(VALID, **changes), ctx or context(components))


def one(components=None, ctx=None, **changes) -> str:
    errors = check(components, ctx, **changes)
    assert len(errors) == 1, errors
    return errors[0]


def test_defaults_with_secrets_pass():
    assert check() == []
    assert check(["worker"]) == []
    assert check(["flower"]) == []


def test_the_action_reads_every_secret_behind_a_need():
    """The action plugin passes only INPUTS: a secret missing there would always count as unset."""
    assert {name for names in NEED_SECRETS.values() for name in names} <= set(airflow_inputs.INPUTS)


def test_every_input_the_checks_read_has_a_default_or_is_a_secret_or_an_address():
    secrets = {name for names in NEED_SECRETS.values() for name in names}
    for name in airflow_inputs.INPUTS:
        assert name in DEFAULTS or name in secrets or name in ("airflow_api_server_host",), name


@pytest.mark.parametrize(("components", "secret"), [
    (ALL, "airflow_admin_password"), (ALL, "airflow_fernet_key"), (ALL, "airflow_jwt_secret"),
    (ALL, "airflow_database_password"), (["worker"], "airflow_api_secret_key"), (["worker"], "airflow_redis_password"),
    (["worker"], "airflow_result_backend_password"), (["flower"], "airflow_redis_password"),
])
def test_missing_secret(components, secret):
    for missing in (None, ""):
        message = one(components, **{secret: missing})
        assert message.startswith(f"{secret} is not set for h1 (which runs {', '.join(components)}), or refers to a vault")
        assert f'{secret}: "{{{{ vault_{secret} }}}}"' in message


def test_a_worker_needs_no_control_plane_secret():
    assert check(["worker"], airflow_fernet_key=None, airflow_jwt_secret=None, airflow_admin_password=None,
                 airflow_database_password=None) == []


@pytest.mark.parametrize("key", [
    "Sh0rt-not-a-fernet-key",
    "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=,Sh0rt",
    "R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=, YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=,YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=",
    "YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=\n",
])
def test_bad_fernet_key(key):
    message = one(airflow_fernet_key=key)
    assert message.startswith("airflow_fernet_key must be a Fernet key")
    assert key.split(",")[-1].strip() not in message  # never the value


def test_rotation_list_passes():
    assert check(airflow_fernet_key="R75MbcrVONZThRGULsFx-8vOr0A4xUT73HC2aN0woyo=,YAddBUL88sy2vlaO7ypwVS4ySKShQOcdE5wSOglfl2o=") == []


@pytest.mark.parametrize(("components", "changes", "expected"), [
    (ALL, {"airflow_api_secret_key": "Sh0rt-key"}, "airflow_api_secret_key must be at least 32 characters"),
    (ALL, {"airflow_api_secret_key": "x" * 31}, "airflow_api_secret_key must be at least 32 characters"),
    (ALL, {"airflow_jwt_secret": "Sh0rt-jwt"}, "airflow_jwt_secret must be at least 64 bytes"),
    (ALL, {"airflow_jwt_secret": "j" * 63}, "airflow_jwt_secret must be at least 64 bytes"),
    (ALL, {"airflow_admin_password": "Sh0rt-admin"}, "airflow_admin_password must be at least 12 characters."),
    (ALL, {"airflow_users": [{"username": "analyst", "password": "Sh0rt-user", "role": "Viewer"}]},
     "every user in airflow_users needs a password of at least 12 characters"),
])
def test_short_secret(components, changes, expected):
    message = one(components, **changes)
    assert message.startswith(expected)
    assert message.endswith('Set secrets from Ansible Vault, e.g. airflow_admin_password: "{{ vault_airflow_admin_password }}".')
    for value in changes.values():
        assert str(value if isinstance(value, str) else value[0]["password"]) not in message


def test_short_secrets_of_components_not_here_are_not_checked():
    assert check(["worker"], airflow_jwt_secret="Sh0rt", airflow_admin_password="x") == []


def test_absent_user_needs_no_password():
    assert check(airflow_users=[{"username": "old", "state": "absent"}]) == []


def test_tls_api_server_needs_its_certificate():
    message = one(airflow_tls_ca_file="/etc/ca.crt", airflow_api_server_tls_cert_file="")
    assert message.startswith("airflow_tls_ca_file is set (TLS), so the api server on h1 serves HTTPS")
    assert check(["worker"], airflow_tls_ca_file="/etc/ca.crt") == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"airflow_users": [{"username": "a", "password": "a-Secret-1234", "role": "Viewer"}], "airflow_auth_manager": "simple"},
     "airflow_users needs airflow_auth_manager=fab"),
    ({"airflow_extras": ["celery", "postgres", "redis", "statsd"]}, "airflow_auth_manager=fab needs 'fab' in airflow_extras"),
    ({"airflow_statsd_host": "10.0.0.9", "airflow_extras": ["celery", "fab", "postgres", "redis"]},
     "airflow_statsd_host=10.0.0.9 needs 'statsd' in airflow_extras"),
    ({"airflow_statsd_port": 0}, "airflow_statsd_port must be 1-65535."),
    ({"airflow_admin_user": "ad min"}, "usernames (airflow_admin_user, airflow_users) may hold only letters, digits and _.@- and must not be empty: ad min."),
    ({"airflow_users": [{"username": "", "password": "a-Secret-1234", "role": "Viewer"}]},
     "usernames (airflow_admin_user, airflow_users) may hold only letters, digits and _.@- and must not be empty: ."),
    ({"airflow_users": [{"username": "admin", "password": "a-Secret-1234", "role": "Viewer"}]},
     "usernames must be unique (airflow_admin_user and airflow_users): admin, admin."),
    ({"airflow_users": [{"username": "a", "password": "a-Secret-1234", "role": "Superuser"}]},
     "the role of every user in airflow_users must be one of Admin, Op, User, Viewer, Public."),
    ({"airflow_users": [{"username": "a", "password": "a-Secret-1234", "role": "Viewer", "state": "gone"}]},
     "airflow_users state must be present or absent."),
])
def test_bad_users_and_auth(changes, expected):
    assert one(**changes).startswith(expected)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"airflow_result_backend_name": "Celery-Results"},
     "airflow_result_backend_name=Celery-Results and airflow_result_backend_user=airflow_celery must be lower-case identifiers."),
    ({"airflow_api_server_host": "localhost"}, "airflow_api_server_host=localhost must be an address every worker reaches"),
    ({"airflow_api_server_host": "127.0.0.1"}, "airflow_api_server_host=127.0.0.1 must be"),
    ({"airflow_api_server_host": "0.0.0.0"}, "airflow_api_server_host=0.0.0.0 must be"),
    ({"airflow_execution_api_url": "https://127.0.0.1:8079/"}, "airflow_execution_api_url=https://127.0.0.1:8079/ must be empty or"),
    ({"airflow_execution_api_url": "127.0.0.1:8079/execution/"}, "ending in /execution/ (e.g. https://127.0.0.1:8079/execution/)"),
    ({"airflow_execution_api_url": "https://127.0.0.1:8079/execution/ "}, "must be empty or an http(s) URL"),
    ({"airflow_api_server_host": ""}, "airflow_api_server_host= must be"),
    ({"airflow_api_server_port": 70000}, "airflow_api_server_port=70000 must be a port (1-65535)."),
    ({"airflow_worker_log_server_port": 0}, "airflow_worker_log_server_port=0 must be a port"),
    ({"airflow_database_port": -1}, "airflow_database_port=-1 must be a port"),
    ({"airflow_redis_port": 65536}, "airflow_redis_port=65536 must be a port"),
    ({"airflow_database_name": "Air-flow"}, "airflow_database_name=Air-flow must be a lower-case identifier."),
    ({"airflow_database_user": "1user"}, "airflow_database_user=1user must be a lower-case identifier."),
    ({"airflow_redis_db": 16}, "airflow_redis_db=16 must be a Redis database number (0-15)."),
    ({"airflow_api_server_workers": 0}, "airflow_api_server_workers=0 must be at least 1."),
    ({"airflow_celery_visibility_timeout": 10, "airflow_longest_task": 5}, "airflow_celery_visibility_timeout=10 must be at least 60 (seconds)."),
    ({"airflow_longest_task": 30000}, "airflow_celery_visibility_timeout=21600 must exceed airflow_longest_task=30000"),
    ({"airflow_dag_refresh_interval": 0}, "airflow_dag_refresh_interval must be at least 1 (seconds)."),
    ({"airflow_celery_prefetch_multiplier": 0}, "airflow_celery_prefetch_multiplier must be at least 1."),
    ({"airflow_default_task_retries": -1}, "airflow_default_task_retries must not be negative."),
    ({"airflow_default_task_retry_delay": -5}, "airflow_default_task_retry_delay must not be negative."),
    ({"airflow_task_heartbeat_check_interval": 600}, "airflow_task_heartbeat_check_interval=600 must be at least 1 and below airflow_task_heartbeat_timeout="),
    ({"airflow_execution_api_retries": 40}, "at most airflow_task_heartbeat_timeout=60: it must stop its task before the scheduler retries it elsewhere."),
    ({"airflow_version": "3.3"}, "airflow_version=3.3 must be X.Y.Z."),
    ({"airflow_venvs_keep": 0}, "airflow_venvs_keep must be at least 1 (the running install)."),
    ({"airflow_worker_drain_timeout": 0}, "airflow_worker_drain_timeout must be at least 1 (seconds)."),
    ({"airflow_database_backups_keep": 0}, "airflow_database_backups_keep must be at least 1."),
    ({"airflow_database_backup_host": ""}, "airflow_database_backup needs airflow_database_backup_host, the inventory name of the"
     " PostgreSQL host (airflow_database_host=10.0.0.1 is not this host)"),
    ({"airflow_extra_config": {"core": "parallelism"}}, "airflow_extra_config must map sections to {key: value} mappings."),
    ({"airflow_log_retention_days": -7}, "airflow_log_retention_days=-7 must be a number of days, or 0 (keep every log)."),
    ({"airflow_db_retention_days": "ninety"}, "airflow_db_retention_days=ninety must be a number of days, or 0 (no airflow db clean)."),
    ({"airflow_celery_result_retention_days": -1}, "airflow_celery_result_retention_days=-1 must be a number of days, or 0 (keep them)."),
])
def test_bad_setting(changes, expected):
    assert expected in one(**changes)


def test_execution_api_timing_message_gives_the_computed_time():
    # 3 x ((40 - 1) x 2 + 5) = 249 s with the defaults
    message = one(airflow_execution_api_retries=40)
    assert f"= {DEFAULTS['airflow_worker_max_failed_heartbeats'] * ((40 - 1) * DEFAULTS['airflow_execution_api_retry_wait'] + 5):.1f} s" in message


def test_result_retention_must_cover_the_longest_task():
    errors = check(airflow_longest_task=90000, airflow_celery_visibility_timeout=100000)
    assert errors == ["airflow_celery_result_retention_days=1 must cover airflow_longest_task=90000 (seconds), or the "
                      "cleanup deletes the result rows of tasks that still run."]


def test_backup_without_host_is_fine_when_the_database_is_local_or_not_needed():
    assert check(airflow_database_backup_host="", airflow_database_host="127.0.0.1") == []
    assert check(["worker"], airflow_database_backup_host="") == []
    assert check(airflow_database_backup_host="", airflow_database_backup=False) == []


def test_dags_src_must_be_a_directory():
    ctx = context(dags_src_is_dir=False)
    assert one(ctx=ctx, airflow_dags_src="/nonexistent/dags") == "airflow_dags_src=/nonexistent/dags is not a directory on the controller."
    assert check(ctx=ctx, airflow_dags_src="") == []


def test_lock_file_must_exist():
    message = one(ctx=context(lock_exists=False), airflow_version="9.9.9")
    assert message.startswith("No lock file airflow-9.9.9-python3.11.txt for airflow_version=9.9.9 on Python 3.11")


def test_wheelhouse_inputs():
    assert check(airflow_install_source="wheelhouse") == []
    assert one(ctx=context(architecture="ppc64le"), airflow_install_source="wheelhouse").startswith(
        "airflow_install_source=wheelhouse: no manylinux wheels for architecture ppc64le")
    assert one(airflow_install_source="wheelhouse", airflow_wheelhouse_glibc="2.5").startswith(
        'airflow_wheelhouse_glibc=2.5 must be a glibc version from 2.17 on, e.g. "2.35".')


def test_uv_lock_file_must_exist():
    message = one(ctx=context(uv_lock_exists=False), airflow_uv_version="0.99.0")
    assert message.startswith("No lock file uv-0.99.0.txt for airflow_uv_version=0.99.0")


@pytest.mark.parametrize("source", ["index", "wheelhouse"])
def test_extras_beyond_the_lock_are_refused_from_any_source(source):
    """Installs take exactly the lock (hash-checked, no resolution): an extra it does not cover would
    be missing, so it is refused before any host changes."""
    message = one(airflow_install_source=source, airflow_extras=LOCK_EXTRAS + ["amazon"])
    assert message == (f"airflow_extras asks for amazon, which the lock of airflow_version={VALID['airflow_version']} does not"
                       f" cover (resolved for the extras {','.join(LOCK_EXTRAS)}): installs take exactly what the lock pins,"
                       " hash-checked. Add a lock for them as files/constraints/README.md describes.")
    assert check(airflow_install_source=source, airflow_extras=["celery", "fab"]) == []


def test_every_problem_at_once():
    assert len(check(airflow_redis_db=99, airflow_venvs_keep=0, airflow_jwt_secret="short")) == 3


def test_secret_lengths_at_the_limit_pass():
    """32 characters of api secret key, 64 bytes of JWT secret (UTF-8: 32 two-byte characters are 64 bytes)."""
    assert check(airflow_api_secret_key="k" * 32, airflow_jwt_secret="j" * 64) == []
    assert check(airflow_jwt_secret="é" * 32) == []
    assert one(airflow_jwt_secret="é" * 31).startswith("airflow_jwt_secret must be at least 64 bytes")
