"""The cluster's database cleanups, run daily by systemd timers as the airflow user with the
virtualenv's Python and AIRFLOW_CONFIG set (airflow-cleanup-db and airflow-cleanup-results).

    python cleanup.py db --days 90 [--skip-archive]
    python cleanup.py results --days 1

db: `airflow db clean` of every table Airflow knows, before the moment N days before now (taken
when the timer fires, not when the unit was written). results: the Celery results in the result
backend of airflow.cfg older than N days, deleted by the backend's own cleanup() with result_expires
set to N days (Celery deletes them only from `celery beat`, which Airflow does not run). Prints what
it did; a failure exits non-zero, so the unit fails and `systemctl --failed` shows it.
"""

import argparse
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path


def clean_db(days, skip_archive):
    before = datetime.now(timezone.utc) - timedelta(days=days)
    argv = [str(Path(sys.executable).parent / "airflow"), "db", "clean", "--clean-before-timestamp",
            before.isoformat(timespec="seconds"), "--yes", "--error-on-cleanup-failure"]
    if skip_archive:
        argv.append("--skip-archive")
    print(" ".join(argv[1:]), flush=True)
    os.execv(argv[0], argv)


def clean_results(days):
    from celery.backends.database import DatabaseBackend, session_cleanup

    from airflow.providers.celery.executors.celery_executor_utils import app

    # Before the first use of app.backend, which reads it once.
    app.conf.result_expires = timedelta(days=days)
    backend = app.backend
    if not isinstance(backend, DatabaseBackend):
        sys.exit(f"the Celery result backend is {type(backend).__name__}, not a database: nothing to delete here")
    before = app.now() - backend.expires
    session = backend.ResultSession()
    with session_cleanup(session):
        expired = {model.__table__.name: session.query(model).filter(model.date_done < before).count()
                   for model in (backend.task_cls, backend.taskset_cls)}
    backend.cleanup()
    print(f"deleted the Celery results dated before {before.isoformat(timespec='seconds')}: "
          + ", ".join(f"{table} {count}" for table, count in expired.items()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="airflow db clean")
    db.add_argument("--days", type=int, required=True)
    db.add_argument("--skip-archive", action="store_true")
    results = commands.add_parser("results", help="delete old Celery results")
    results.add_argument("--days", type=int, required=True)
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.command == "db":
        clean_db(args.days, args.skip_archive)
    else:
        clean_results(args.days)
