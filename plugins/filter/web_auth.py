# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filters airflow_ops.celery.web_config and airflow_ops.celery.scrape_password: logins and TLS of
Prometheus and the PostgreSQL exporter (exporter-toolkit's --web.config.file), as
plugins/plugin_utils/web_auth.py defines them. Their documentation is in web_config.yml and
scrape_password.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import web_auth
except ImportError:  # the unit tests import plugin_utils beside this file
    import web_auth


def web_config(logins, cert_file="", key_file=""):
    try:
        return web_auth.web_config(str(logins or ""), str(cert_file or ""), str(key_file or ""))
    except ImportError as err:
        raise AnsibleFilterError("web_config: the controller's Python needs the bcrypt package (pip install bcrypt; "
                                 "requirements.txt pins it)") from err
    except ValueError as err:
        raise AnsibleFilterError(f"web_config: {err}") from err


def scrape_password(logins, target):
    try:
        return web_auth.scrape_password(str(logins or ""), str(target or ""))
    except ValueError as err:
        raise AnsibleFilterError(f"scrape_password: {err}") from err


class FilterModule:
    def filters(self):
        return {"web_config": web_config, "scrape_password": scrape_password}
