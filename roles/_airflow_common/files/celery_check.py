"""Connect to the Celery broker and result backend of this host's airflow.cfg; say which fails.

    python celery_check.py broker result_backend

Run by the worker role, as the airflow user with the virtualenv's Python and AIRFLOW_CONFIG set,
before the worker restarts on a new airflow.cfg or code: a wrong broker or result-backend setting
otherwise shows only as a worker that never answers, or answers but cannot store a result. Prints one line per failure,
with the address but never the password; exit code 1 then.
"""

import sys
from urllib.parse import urlsplit

from airflow.configuration import conf


def where(url):
    parts = urlsplit(url)
    login = f" as {parts.username}" if parts.username else ""
    return f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}{login}"


def check_broker():
    """Through kombu, with the settings the Celery app gets ([celery] celery_config_options: broker URL,
    transport options, TLS): a single Redis, or the primary the Sentinels name (sentinel://...;...)."""
    import kombu

    config = conf.getimport("celery", "celery_config_options")
    url = config["broker_url"]
    try:
        with kombu.Connection(url, transport_options=dict(config.get("broker_transport_options") or {}),
                              ssl=config.get("broker_use_ssl") or False, connect_timeout=10) as connection:
            connection.ensure_connection(max_retries=1, timeout=10)
            connection.default_channel.client.ping()
    except Exception as err:  # noqa: BLE001 - report whatever the client says
        return f"the Celery broker {', '.join(where(one) for one in url.split(';'))}: {type(err).__name__}: {err}"
    return None


def check_result_backend():
    import sqlalchemy

    url = conf.get("celery", "result_backend").removeprefix("db+")
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 10})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as err:  # noqa: BLE001
        # psycopg repeats the reason once per address it tried: drop lines an earlier one holds.
        lines = [line.strip() for line in str(getattr(err, "orig", err)).splitlines() if line.strip()]
        detail = [line for i, line in enumerate(lines) if not any(line in earlier for earlier in lines[:i])]
        return f"the Celery result backend {where(url)}: {type(err).__name__}: {' '.join(detail)[:300]}"
    return None


CHECKS = {"broker": check_broker, "result_backend": check_result_backend}

if __name__ == "__main__":
    failures = [CHECKS[name]() for name in sys.argv[1:]]
    failures = [message for message in failures if message]
    if failures:
        print("\n".join(failures))
    sys.exit(1 if failures else 0)
