# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Test-only callback: every play, task result and the final stats of an ansible-playbook run as
JSON lines in the file named by $AIRFLOW_OPS_EVENTS, so that tests judge a run from data (which
task changed on which host, in which play; which role it belongs to) instead of its text output.
Of a result's content only a failed task's error is written (what the default callback prints for
it too; nothing for a no_log task).

Enabled by tests/lib/airflow_ops_testlib.py (events_env()) beside the normal stdout callback.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: airflow_ops_events
type: aggregate
short_description: Task results as JSON lines for the tests
description: >-
  Writes plays, entries into roles and tasks files, task results (status and duration; a failed
  one's error) and stats to the file named by AIRFLOW_OPS_EVENTS.
requirements: [AIRFLOW_OPS_EVENTS in the environment]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "airflow_ops_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("AIRFLOW_OPS_EVENTS")
        self._play = ""
        self._started = {}  # (host, task uuid) -> when it started there

    def _write(self, event: dict) -> None:
        if self._path:
            with open(self._path, "a", encoding="utf-8") as out:
                out.write(json.dumps(event) + "\n")

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()
        self._write({"event": "play", "play": self._play})

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _result(self, result, status: str) -> None:
        """One task result. A failed one carries its error (module message, else the end of stderr),
        as the default callback prints it: tests read why a run failed from data."""
        task = result._task
        started = self._started.pop((result._host.get_name(), task._uuid), None)
        role = task._role.get_name() if task._role else None
        delegated = result._result.get("_ansible_delegated_vars", {}).get("ansible_delegated_host")
        self._write({
            "event": "result", "play": self._play, "host": result._host.get_name(), "delegated_to": delegated,
            "task": task.get_name().strip(), "role": role, "action": task.action, "status": status,
            "handler": task.__class__.__name__ == "Handler",
            "seconds": None if started is None else round(time.time() - started, 3),
            **({"error": self._error(result._result)} if status == "failed" else {}),
        })

    @staticmethod
    def _error(outcome: dict) -> str:
        if outcome.get("_ansible_no_log"):
            return "(no_log)"
        return "\n".join(str(outcome.get(key) or "")[-3000:] for key in ("msg", "stderr") if outcome.get(key))

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_include(self, included_file):
        """An entry into a tasks file or a role's entry point (tasks_from), with the hosts it serves."""
        event = {"event": "include", "play": self._play, "hosts": sorted(h.get_name() for h in included_file._hosts)}
        if included_file._is_role:
            event.update(role=str(included_file._filename).rsplit(".", 1)[-1],
                         tasks_from=str(included_file._task._from_files.get("tasks", "main")))
        else:
            event["file"] = "/".join(str(included_file._filename).split(os.sep)[-3:])
        self._write(event)

    def v2_playbook_on_stats(self, stats):
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._write({"event": "stats", "hosts": hosts})
