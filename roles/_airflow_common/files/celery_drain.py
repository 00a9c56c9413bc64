"""Drain one Celery worker: stop it consuming, wait until its running tasks ended, say so.

    python celery_drain.py --node celery@HOST --timeout SECONDS

Run as the airflow user with the virtualenv's Python and AIRFLOW_CONFIG set (it reads the broker
from airflow.cfg), before the worker restarts on a new install or airflow.cfg, and before it is
decommissioned. The worker cancels its consumers of every queue it consumes (Celery's
cancel_consumer), so Redis hands new tasks to the other workers; its running tasks go on. When none
is left the worker can restart without killing anything: prints "drained ..." and exits 0. A worker
that does not answer within 5 s (not running, or a new host) has nothing to drain (exit 0, no
"drained"); its unit's state is not asked, as the airflow user may have no D-Bus to ask it with.
After --timeout seconds with tasks still running it consumes its queues again, names how many
tasks still run, and exits 1: nothing was stopped. Prints task ids, never task arguments (they hold
the task's token).
"""

import argparse
import sys
import time

POLL = 2


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True, help="the worker's Celery node name, celery@<host>")
    parser.add_argument("--timeout", type=float, required=True, help="seconds to wait for its running tasks")
    args = parser.parse_args()

    from airflow.providers.celery.executors.celery_executor import app

    destination = [args.node]
    inspect = app.control.inspect(destination=destination, timeout=5)
    queues = (inspect.active_queues() or {}).get(args.node)
    if queues is None:
        print(f"{args.node} does not answer through the broker: nothing to drain")
        return 0
    names = sorted({queue["name"] for queue in queues})
    for name in names:
        app.control.cancel_consumer(name, destination=destination, reply=True, timeout=10)
    print(f"{args.node} stopped consuming {', '.join(names) or 'no queue'}", flush=True)

    started = time.monotonic()
    busy: list | None = None  # None: no answer yet
    while True:
        active = inspect.active()
        reserved = inspect.reserved()
        if active is not None and args.node in active and reserved is not None:
            busy = [task["id"] for task in active[args.node] + reserved.get(args.node, [])]
            if not busy:
                print(f"drained {args.node}: no task left after {time.monotonic() - started:.0f} s", flush=True)
                return 0
        if time.monotonic() - started >= args.timeout:
            break
        time.sleep(POLL)

    for name in names:
        app.control.add_consumer(name, destination=destination, reply=True, timeout=10)
    state = "did not answer" if busy is None else f"still runs {len(busy)} task(s) ({', '.join(busy[:10])})"
    print(
        f"{args.node} {state} after {args.timeout:.0f} s; it consumes {', '.join(names)} again and was not restarted. "
        "Let its tasks finish and run again, or raise airflow_worker_drain_timeout.",
        flush=True,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
