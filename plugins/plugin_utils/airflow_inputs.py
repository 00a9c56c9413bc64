# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The checks of the shared Airflow inputs (roles/_airflow_common, entry point preflight) that a
type in meta/argument_specs.yml cannot express. Pure Python: `check(values, host)` returns one
message per problem, each naming the variable and what is accepted; messages about secrets name
the variable, never its value.

The action plugin `airflow_ops.celery.role_preflight` (role `_airflow_common`) reads the host's inputs into `values`;
tests/unit/test_airflow_inputs.py calls `check()` with dicts.
"""

from __future__ import annotations

import re

try:  # as the collection's plugin_utils under Ansible, or beside this file in the unit tests
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import dag_bundles
except ImportError:
    import dag_bundles

# The inputs the checks read (the action plugin passes what is defined of them).
INPUTS = (
    "airflow_redis_password", "airflow_database_password", "airflow_result_backend_password", "airflow_fernet_key",
    "airflow_api_secret_key", "airflow_jwt_secret", "airflow_admin_password", "airflow_admin_user",
    "airflow_users", "airflow_auth_manager", "airflow_extras", "airflow_statsd_host", "airflow_statsd_port",
    "airflow_tls_ca_file", "airflow_api_server_tls_cert_file", "airflow_api_server_tls_key_file",
    "airflow_result_backend_name", "airflow_result_backend_user", "airflow_api_server_host", "airflow_api_server_port",
    "airflow_execution_api_url",
    "airflow_worker_log_server_port", "airflow_triggerer_log_server_port", "airflow_database_port", "airflow_redis_port", "airflow_database_name",
    "airflow_database_user", "airflow_redis_db", "airflow_api_server_workers", "airflow_celery_visibility_timeout",
    "airflow_longest_task", "airflow_dag_refresh_interval", "airflow_celery_prefetch_multiplier",
    "airflow_default_task_retries", "airflow_default_task_retry_delay", "airflow_task_heartbeat_check_interval",
    "airflow_task_heartbeat_timeout", "airflow_worker_max_failed_heartbeats", "airflow_execution_api_retry_wait",
    "airflow_execution_api_retries", "airflow_version", "airflow_venvs_keep", "airflow_worker_drain_timeout",
    "airflow_database_backups_keep", "airflow_database_backup", "airflow_database_backup_host", "airflow_database_host",
    "airflow_extra_config", "airflow_dags_src", "airflow_log_retention_days", "airflow_db_retention_days",
    "airflow_celery_result_retention_days", "airflow_install_source", "airflow_wheelhouse_glibc",
    "airflow_dag_bundles", "airflow_dag_bundle_refresh_interval", "airflow_dag_bundle_cleanup_interval",
    "airflow_dag_bundle_cleanup_age", "airflow_dag_bundle_cleanup_min_versions",
)
USER_ROLES = ("Admin", "Op", "User", "Viewer", "Public")
FERNET = re.compile(r"[A-Za-z0-9_-]{43}=(,[A-Za-z0-9_-]{43}=)*")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
USERNAME = re.compile(r"[A-Za-z0-9_.@-]+")
LOCAL = re.compile(r"(localhost|127\.|::1$|0\.0\.0\.0$)")
EXECUTION_URL = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}/execution/")
VAULT_EXAMPLE = 'Put the secret in Ansible Vault and reference it from group_vars, e.g. {0}: "{{{{ vault_{0} }}}}".'


class Context:
    """What the checks know besides the inputs: the host, the components the caller configures and
    their needs, the secrets behind those needs, and facts of the host and the controller."""

    def __init__(self, host: str, components: list[str], needs: list[str], need_secrets: dict,
                 python_minor: str = "", architecture: str = "", lock_exists: bool = True,
                 lock_extras: list[str] | None = None, dags_src_is_dir: bool = True, uv_lock_exists: bool = True):
        self.host, self.components, self.needs = host, list(components), list(needs)
        self.need_secrets = need_secrets
        self.python_minor, self.architecture = python_minor, architecture
        self.lock_exists, self.lock_extras, self.dags_src_is_dir = lock_exists, lock_extras, dags_src_is_dir
        self.uv_lock_exists = uv_lock_exists


def present_users(users: list) -> list[dict]:
    """The airflow_users to create or update: those without state, or with one other than absent."""
    return [user for user in users if not isinstance(user, dict) or user.get("state", "present") != "absent"]


def missing_secrets(values: dict, ctx: Context) -> list[str]:
    """The secrets this host's components need that are unset, empty or an undefined reference
    (the action plugin passes None for those)."""
    names = []
    for need in ctx.needs:
        for name in ctx.need_secrets.get(need, []):
            if name not in names and (values.get(name) is None or str(values.get(name)) == ""):
                names.append(name)
    return names


def secret_errors(values: dict, ctx: Context, missing: list[str]) -> list[str]:
    errors = []
    needs = set(ctx.needs)

    def given(name):
        return name not in missing and values.get(name) is not None

    fernet = str(values.get("airflow_fernet_key", ""))
    if "fernet_key" in needs and given("airflow_fernet_key") and not (
            FERNET.fullmatch(fernet) and len(set(fernet.split(","))) == len(fernet.split(","))):
        errors.append("airflow_fernet_key must be a Fernet key (44 url-safe base64 characters: python3 -c "
                      "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), or to rotate, "
                      "distinct keys separated by commas without spaces, the new one first (NEW,OLD).")
    if "api_secret_key" in needs and given("airflow_api_secret_key") and len(str(values["airflow_api_secret_key"])) < 32:
        errors.append("airflow_api_secret_key must be at least 32 characters (it signs UI sessions and log server tokens): "
                      "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    if "jwt_secret" in needs and given("airflow_jwt_secret") and len(str(values["airflow_jwt_secret"]).encode()) < 64:
        errors.append("airflow_jwt_secret must be at least 64 bytes (task tokens are signed with HS512, whose key should be"
                      " as long as its 64-byte hash): e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(64))'.")
    if "users" in needs and given("airflow_admin_password") and len(str(values["airflow_admin_password"])) < 12:
        errors.append("airflow_admin_password must be at least 12 characters.")
    if "users" in needs and [user for user in present_users(values.get("airflow_users") or [])
                             if len(str(user.get("password", "") if isinstance(user, dict) else "")) < 12]:
        errors.append("every user in airflow_users needs a password of at least 12 characters (or state: absent).")
    return errors


def user_errors(values: dict) -> list[str]:
    errors = []
    users = values.get("airflow_users") or []
    extras = list(values.get("airflow_extras") or [])
    auth_manager = values.get("airflow_auth_manager", "fab")
    if users and auth_manager != "fab":
        errors.append("airflow_users needs airflow_auth_manager=fab (SimpleAuthManager knows only the admin).")
    if auth_manager == "fab" and "fab" not in extras:
        errors.append("airflow_auth_manager=fab needs 'fab' in airflow_extras (apache-airflow-providers-fab).")
    statsd_host = str(values.get("airflow_statsd_host") or "")
    if statsd_host and "statsd" not in extras:
        errors.append(f"airflow_statsd_host={statsd_host} needs 'statsd' in airflow_extras (Airflow's StatsD client).")
    if not in_range(values.get("airflow_statsd_port", 8125), 1, 65535):
        errors.append("airflow_statsd_port must be 1-65535.")
    names = [str(values.get("airflow_admin_user", "admin"))] + [
        str(user.get("username", "")) if isinstance(user, dict) else "" for user in users]
    bad = [name for name in names if not USERNAME.fullmatch(name)]
    if bad:
        errors.append("usernames (airflow_admin_user, airflow_users) may hold only letters, digits and _.@- and must not "
                      f"be empty: {', '.join(bad)}.")
    if len(set(names)) != len(names):
        errors.append(f"usernames must be unique (airflow_admin_user and airflow_users): {', '.join(names)}.")
    if [user for user in present_users(users) if not isinstance(user, dict) or user.get("role", "") not in USER_ROLES]:
        errors.append(f"the role of every user in airflow_users must be one of {', '.join(USER_ROLES)}.")
    if [user for user in users if isinstance(user, dict) and "state" in user and user["state"] not in ("present", "absent")]:
        errors.append("airflow_users state must be present or absent.")
    return errors


def number(value):
    """An int or float input as Jinja compares it; None if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return float(str(value).strip())
        except ValueError:
            return None


def in_range(value, low, high=None) -> bool:
    value = number(value)
    return value is not None and value >= low and (high is None or value <= high)


def setting_errors(values: dict, ctx: Context) -> list[str]:
    v = values
    errors = []

    def need(condition, message):
        if not condition:
            errors.append(message)

    def num(name):
        found = number(v.get(name))
        if found is None:
            errors.append(f"{name}={v.get(name)} must be a number.")
            return 0
        return found

    backend_name, backend_user = str(v.get("airflow_result_backend_name")), str(v.get("airflow_result_backend_user"))
    need(IDENTIFIER.fullmatch(backend_name) and IDENTIFIER.fullmatch(backend_user),
         f"airflow_result_backend_name={backend_name} and airflow_result_backend_user={backend_user} must be lower-case identifiers.")
    api_host = str(v.get("airflow_api_server_host") or "")
    need(api_host and not LOCAL.match(api_host) and api_host == api_host.strip(),
         f"airflow_api_server_host={api_host} must be an address every worker reaches the api server at, never localhost"
         " (site.yml: site_api_server_host, or the first api_server host).")
    execution_url = str(v.get("airflow_execution_api_url") or "")
    need(not execution_url or EXECUTION_URL.fullmatch(execution_url),
         f"airflow_execution_api_url={execution_url} must be empty or an http(s) URL of a host and port ending in /execution/ "
         "(e.g. https://127.0.0.1:8079/execution/).")
    for name in ("airflow_api_server_port", "airflow_worker_log_server_port", "airflow_triggerer_log_server_port",
                 "airflow_database_port", "airflow_redis_port"):
        need(in_range(v.get(name), 1, 65535), f"{name}={v.get(name)} must be a port (1-65535).")
    for name in ("airflow_database_name", "airflow_database_user"):
        need(IDENTIFIER.fullmatch(str(v.get(name))), f"{name}={v.get(name)} must be a lower-case identifier.")
    need(in_range(v.get("airflow_redis_db"), 0, 15),
         f"airflow_redis_db={v.get('airflow_redis_db')} must be a Redis database number (0-15).")
    need(in_range(v.get("airflow_api_server_workers"), 1),
         f"airflow_api_server_workers={v.get('airflow_api_server_workers')} must be at least 1.")
    visibility, longest = num("airflow_celery_visibility_timeout"), num("airflow_longest_task")
    need(visibility >= 60, f"airflow_celery_visibility_timeout={v.get('airflow_celery_visibility_timeout')} must be at least 60 (seconds).")
    need(visibility > longest,
         f"airflow_celery_visibility_timeout={v.get('airflow_celery_visibility_timeout')} must exceed airflow_longest_task="
         f"{v.get('airflow_longest_task')} (seconds), or Redis hands a task that still runs to a second worker.")
    need(in_range(v.get("airflow_dag_refresh_interval"), 1), "airflow_dag_refresh_interval must be at least 1 (seconds).")
    need(longest >= 1, "airflow_longest_task must be at least 1 (seconds).")
    need(in_range(v.get("airflow_celery_prefetch_multiplier"), 1), "airflow_celery_prefetch_multiplier must be at least 1.")
    need(in_range(v.get("airflow_default_task_retries"), 0), "airflow_default_task_retries must not be negative.")
    need(in_range(v.get("airflow_default_task_retry_delay"), 0), "airflow_default_task_retry_delay must not be negative.")
    check_interval, heartbeat_timeout = num("airflow_task_heartbeat_check_interval"), num("airflow_task_heartbeat_timeout")
    need(1 <= check_interval < heartbeat_timeout,
         f"airflow_task_heartbeat_check_interval={v.get('airflow_task_heartbeat_check_interval')} must be at least 1 and below"
         f" airflow_task_heartbeat_timeout={v.get('airflow_task_heartbeat_timeout')}.")
    failed, wait, retries = (num("airflow_worker_max_failed_heartbeats"), num("airflow_execution_api_retry_wait"),
                             num("airflow_execution_api_retries"))
    cut_off = failed * ((retries - 1) * wait + 5)
    need(failed >= 1 and wait > 0 and cut_off <= heartbeat_timeout,
         f"airflow_worker_max_failed_heartbeats={v.get('airflow_worker_max_failed_heartbeats')} must be at least 1,"
         f" airflow_execution_api_retry_wait={v.get('airflow_execution_api_retry_wait')} above 0, and the time a worker"
         " cut off from the api server keeps its task, max_failed_heartbeats x ((execution_api_retries - 1) x"
         f" retry_wait + 5 s) = {round(float(cut_off), 1)} s, at most airflow_task_heartbeat_timeout="
         f"{v.get('airflow_task_heartbeat_timeout')}: it must stop its task before the scheduler retries it elsewhere.")
    need(re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", str(v.get("airflow_version"))),
         f"airflow_version={v.get('airflow_version')} must be X.Y.Z.")
    need(in_range(v.get("airflow_venvs_keep"), 1), "airflow_venvs_keep must be at least 1 (the running install).")
    need(in_range(v.get("airflow_worker_drain_timeout"), 1), "airflow_worker_drain_timeout must be at least 1 (seconds).")
    need(in_range(v.get("airflow_execution_api_retries"), 1), "airflow_execution_api_retries must be at least 1.")
    need(in_range(v.get("airflow_database_backups_keep"), 1), "airflow_database_backups_keep must be at least 1.")
    database_host = str(v.get("airflow_database_host") or "")
    need(not v.get("airflow_database_backup") or "metadata_db" not in ctx.needs or str(v.get("airflow_database_backup_host") or "")
         or database_host in ("127.0.0.1", "localhost", "::1"),
         "airflow_database_backup needs airflow_database_backup_host, the inventory name of the PostgreSQL host"
         f" (airflow_database_host={database_host} is not this host), or airflow_database_backup: false.")
    extra = v.get("airflow_extra_config") or {}
    need(isinstance(extra, dict) and all(isinstance(section, dict) for section in extra.values()),
         "airflow_extra_config must map sections to {key: value} mappings.")
    dags_src = str(v.get("airflow_dags_src") or "")
    need(not dags_src or ctx.dags_src_is_dir, f"airflow_dags_src={dags_src} is not a directory on the controller.")
    if "airflow_dag_bundles" in v:
        errors.extend(dag_bundles.errors(v.get("airflow_dag_bundles"), ctx.host, dags_src))
    need(in_range(v.get("airflow_dag_bundle_refresh_interval", 30), 1),
         "airflow_dag_bundle_refresh_interval must be at least 1 (seconds).")
    need(in_range(v.get("airflow_dag_bundle_cleanup_interval", 1800), 0),
         "airflow_dag_bundle_cleanup_interval must be a number of seconds, or 0 (no cleanup).")
    need(in_range(v.get("airflow_dag_bundle_cleanup_age", 21600), 0), "airflow_dag_bundle_cleanup_age must not be negative.")
    need(in_range(v.get("airflow_dag_bundle_cleanup_min_versions", 10), 1),
         "airflow_dag_bundle_cleanup_min_versions must be at least 1 (the newest version).")
    log_days, db_days, result_days = (v.get("airflow_log_retention_days"), v.get("airflow_db_retention_days"),
                                      v.get("airflow_celery_result_retention_days"))
    need(in_range(log_days, 0), f"airflow_log_retention_days={log_days} must be a number of days, or 0 (keep every log).")
    need(in_range(db_days, 0), f"airflow_db_retention_days={db_days} must be a number of days, or 0 (no airflow db clean).")
    need(in_range(result_days, 0),
         f"airflow_celery_result_retention_days={result_days} must be a number of days, or 0 (keep them).")
    result_number = number(result_days) or 0
    need(result_number <= 0 or result_number * 86400 > longest,
         f"airflow_celery_result_retention_days={result_days} must cover airflow_longest_task={v.get('airflow_longest_task')}"
         " (seconds), or the cleanup deletes the result rows of tasks that still run.")
    return errors


def install_errors(values: dict, ctx: Context) -> list[str]:
    errors = []
    version = values.get("airflow_version")
    if not ctx.lock_exists:
        errors.append(f"No lock file airflow-{version}-python{ctx.python_minor}.txt for airflow_version={version} on Python"
                      f" {ctx.python_minor} (roles/_airflow_common/files/constraints/). Generate it as"
                      " files/constraints/README.md there describes.")
    if not ctx.uv_lock_exists:
        uv = values.get("airflow_uv_version")
        errors.append(f"No lock file uv-{uv}.txt for airflow_uv_version={uv} (roles/_airflow_common/files/constraints/):"
                      " uv is installed hash-checked like Airflow. Generate it as files/constraints/README.md there describes.")
    extras = list(values.get("airflow_extras") or [])
    lock_extras = ctx.lock_extras if ctx.lock_extras is not None else extras
    beyond = [extra for extra in extras if extra not in lock_extras]
    if beyond:
        errors.append(f"airflow_extras asks for {','.join(beyond)}, which the lock of airflow_version={version} does not"
                      f" cover (resolved for the extras {','.join(lock_extras)}): installs take exactly what the lock pins,"
                      " hash-checked. Add a lock for them as files/constraints/README.md describes.")
    if values.get("airflow_install_source") == "wheelhouse":
        if ctx.architecture not in ("x86_64", "aarch64"):
            errors.append(f"airflow_install_source=wheelhouse: no manylinux wheels for architecture {ctx.architecture}"
                          " (x86_64 and aarch64 only); use airflow_install_source=index.")
        glibc = str(values.get("airflow_wheelhouse_glibc"))
        if not (re.fullmatch(r"2[.][0-9]+", glibc) and int(glibc.split(".")[1]) >= 17):
            errors.append(f'airflow_wheelhouse_glibc={glibc} must be a glibc version from 2.17 on, e.g. "2.35".')
    return errors


def check(values: dict, ctx: Context) -> list[str]:
    """Every problem of the host's shared Airflow inputs; [] when they are fine."""
    missing = missing_secrets(values, ctx)
    errors = [f"{name} is not set for {ctx.host} (which runs {', '.join(ctx.components)}), or refers to a vault variable"
              f" that is not defined. " + VAULT_EXAMPLE.format(name) for name in missing]
    secrets = secret_errors(values, ctx, missing)
    if secrets:
        errors.append(" ".join(secrets) + ' Set secrets from Ansible Vault, e.g. airflow_admin_password: '
                      '"{{ vault_airflow_admin_password }}".')
    tls = bool(str(values.get("airflow_tls_ca_file") or ""))
    if tls and "api-server" in ctx.components and not (str(values.get("airflow_api_server_tls_cert_file") or "")
                                                       and str(values.get("airflow_api_server_tls_key_file") or "")):
        errors.append(f"airflow_tls_ca_file is set (TLS), so the api server on {ctx.host} serves HTTPS: set"
                      " airflow_api_server_tls_cert_file and airflow_api_server_tls_key_file to its certificate and key on"
                      " the host (site.yml does with site_tls).")
    return errors + user_errors(values) + setting_errors(values, ctx) + install_errors(values, ctx)


def lock_extras(lock_input_text: str) -> list[str]:
    """The extras of the lock's input, from its first line: apache-airflow[<extras>]==<version>."""
    return lock_input_text.split("[", 1)[1].split("]", 1)[0].split(",")
