#!/usr/bin/python3
"""Wait until systemd units run and stay up; fail with their state and journal otherwise.

    unit_health.py [--settle S] [--timeout S] [--fresh UNIT]... UNIT...

Every UNIT must be active (running). A --fresh unit, one the play started or restarted just
now, must also have stayed up for --settle seconds without an automatic restart, longer than
its RestartSec, so a unit that crashes and comes back in a loop is caught. Run as root by the
airflow_ops.celery roles after they (re)start units; prints nothing when all is well.
"""

import argparse
import subprocess
import sys
import time

PROPERTIES = ("ActiveState", "SubState", "NRestarts", "ActiveEnterTimestampMonotonic", "Result")


def state(unit):
    out = subprocess.run(
        ["systemctl", "show", unit] + [f"--property={name}" for name in PROPERTIES],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def problem(unit, fresh, settle):
    """(why the unit is not healthy, whether waiting can help), or None when it is."""
    info = state(unit)
    running = (info.get("ActiveState"), info.get("SubState")) == ("active", "running")
    restarts = int(info.get("NRestarts") or 0)
    if fresh and restarts:
        # systemd's counter starts at 0 when the play starts or restarts a unit: it crashed since.
        return (f"{unit} crashed and was restarted by systemd {restarts} time(s) since the play started it"
                f" (now {info.get('ActiveState')}, {info.get('SubState')})", False)
    if not running:
        return f"{unit} is {info.get('ActiveState')} ({info.get('SubState')}, result {info.get('Result')})", True
    if fresh:
        up = time.clock_gettime(time.CLOCK_MONOTONIC) - int(info.get("ActiveEnterTimestampMonotonic") or 0) / 1e6
        if up < settle:
            return f"{unit} has been up for {up:.0f} s only", True
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=15)
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--fresh", action="append", default=[])
    parser.add_argument("units", nargs="+")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    while True:
        found = {unit: problem(unit, unit in args.fresh, args.settle) for unit in args.units}
        problems = {unit: found_problem for unit, found_problem in found.items() if found_problem}
        if not problems:
            return 0
        if any(not can_wait for _unused, can_wait in problems.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    for unit, (text, _unused) in problems.items():
        journal = subprocess.run(
            ["journalctl", "--unit", unit, "--lines", "15", "--no-pager", "--output", "cat"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()
        print(f"{text}. Last lines of `journalctl -u {unit}`:\n{journal}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
