#!/usr/bin/python3
"""How many refresh intervals ago the dag-processor last fetched each Git DAG bundle, sent as StatsD
gauges to the monitoring host (where a Prometheus alert watches them).

Airflow logs a failed fetch ("Error refreshing bundle <name>") and keeps serving the last commit it
fetched, but sends no metric for it. Each successful fetch rewrites FETCH_HEAD in the bundle's bare
mirror (<storage>/<name>/bare/FETCH_HEAD); a bundle not fetched yet counts from when its storage
directory was made. Run by airflow-ops-bundle-age.timer every minute, as airflow:

    bundle_age.py --statsd HOST:PORT --prefix PREFIX --storage DIR NAME=REFRESH_SECONDS ...

sends PREFIX.dag_bundle.NAME.missed_refreshes:<whole intervals since the last fetch>|g per bundle.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time


def missed_refreshes(storage: str, name: str, refresh: int, now: float) -> int:
    """Whole refresh intervals since the last successful fetch of the bundle."""
    for path in (os.path.join(storage, name, "bare", "FETCH_HEAD"), os.path.join(storage, name, "bare"), storage):
        try:
            fetched = os.stat(path).st_mtime
            break
        except OSError:
            continue
    else:
        fetched = now
    return max(0, int((now - fetched) // max(refresh, 1)))


def gauges(prefix: str, storage: str, bundles: dict[str, int], now: float) -> list[str]:
    return [f"{prefix}.dag_bundle.{name}.missed_refreshes:{missed_refreshes(storage, name, refresh, now)}|g"
            for name, refresh in sorted(bundles.items())]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--statsd", required=True, help="HOST:PORT of the StatsD receiver")
    parser.add_argument("--prefix", default="airflow_ops")
    parser.add_argument("--storage", required=True, help="[dag_processor] dag_bundle_storage_path")
    parser.add_argument("bundles", nargs="+", help="NAME=REFRESH_SECONDS")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    bundles = {item.split("=", 1)[0]: int(item.split("=", 1)[1]) for item in args.bundles}
    host, port = args.statsd.rsplit(":", 1)
    lines = gauges(args.prefix, args.storage, bundles, time.time())
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for line in lines:
            sender.sendto(line.encode(), (host.strip("[]"), int(port)))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
