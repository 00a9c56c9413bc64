# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filters airflow_ops.celery.redis_user_password, redis_acl_file and redis_sentinel_acl_file: the
broker's users, as plugins/plugin_utils/redis_acl.py defines them. Their documentation is in
redis_user_password.yml, redis_acl_file.yml, redis_sentinel_acl_file.yml and redis_default_user_on.yml
beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import redis_acl
except ImportError:  # the unit tests import plugin_utils beside this file
    import redis_acl


def redis_user_password(redis_password, user):
    try:
        return redis_acl.user_password(str(redis_password), str(user or ""))
    except ValueError as err:
        raise AnsibleFilterError(f"redis_user_password: {err}") from err


def redis_acl_file(redis_password, package_version, default_user_on=False, replicated=False):
    try:
        return redis_acl.acl_file(str(redis_password), redis_acl.redis_version(package_version), bool(default_user_on),
                                  bool(replicated))
    except ValueError as err:
        raise AnsibleFilterError(f"redis_acl_file: {err}") from err


def redis_sentinel_acl_file(redis_password, package_version):
    try:
        return redis_acl.sentinel_acl_file(str(redis_password), redis_acl.redis_version(package_version))
    except ValueError as err:
        raise AnsibleFilterError(f"redis_sentinel_acl_file: {err}") from err


def redis_default_user_on(clients_moving, settings, acl):
    return redis_acl.default_user_on(bool(clients_moving), settings, acl)


class FilterModule:
    def filters(self):
        return {"redis_user_password": redis_user_password, "redis_acl_file": redis_acl_file,
                "redis_sentinel_acl_file": redis_sentinel_acl_file,
                "redis_default_user_on": redis_default_user_on}
