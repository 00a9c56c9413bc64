#!/usr/bin/python3
"""Remove the Airflow virtualenvs no unit runs and no longer kept; print what was removed as JSON.

    venv_prune.py --dir /opt/airflow/venvs --current ID --keep N [--check]

Kept: the current install, every virtualenv a unit file in /etc/systemd/system names (a worker
still draining runs the previous one until it restarts), and the newest installs up to --keep in
all (the current one counted), so `airflow_version: <previous>` switches back without a download.
Newest by the time each install completed (its .airflow-ops-install stamp). Run as root by
_airflow_common's finish.yml; --check only reports.
"""

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

STAMP = ".airflow-ops-install"
UNITS = Path("/etc/systemd/system")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--keep", type=int, required=True)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    in_use = set()
    pattern = re.compile(re.escape(str(args.dir)) + r"/([^/\s]+)/")
    for unit in UNITS.glob("airflow-*.service"):
        in_use.update(pattern.findall(unit.read_text(errors="replace")))

    def installed_at(venv: Path) -> float:
        stamp = venv / STAMP
        return stamp.stat().st_mtime if stamp.exists() else 0.0

    others = sorted((v for v in args.dir.iterdir() if v.is_dir() and v.name != args.current), key=installed_at, reverse=True)
    keep = {args.current} | {v.name for v in others[: max(args.keep - 1, 0)]} | in_use
    removed = [v.name for v in others if v.name not in keep]
    if not args.check:
        for name in removed:
            shutil.rmtree(args.dir / name)
    print(json.dumps({"removed": removed, "kept": sorted(keep & {v.name for v in args.dir.iterdir()} | {args.current})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
