# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.worker_batch: how many workers site.yml's worker play takes at a time.

Rolling batches exist so that a worker restarting for new code finishes its running tasks while
the others keep consuming. Where no worker of the play runs yet (a new cluster), there is nothing
to drain or keep consuming, and one batch starts them all; otherwise the user's batch applies."""

from __future__ import annotations

DOCUMENTATION = r"""
name: worker_batch
short_description: The worker play's batch size, from what the hosts' probe found
version_added: "0.1.0"
description:
  - Returns C(100%) when every host of O(_input) was probed in this run
    (C(airflow_ops.celery.host_state), registered as C(__airflow_common_state) by the shared
    Airflow setup) and on none of them the worker unit runs (the probe's C(stopped), that is C(inactive) or C(failed));
    otherwise O(batch).
  - A host without a probe (outside C(--limit), unreachable, failed) counts as running a worker,
    so that doubt keeps the rolling batches.
options:
  _input:
    description: The hosts of the worker play, C(groups.workers).
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
  batch:
    description: The batch otherwise, C(site_worker_batch).
    type: raw
    required: true
  unit:
    description: The worker's unit.
    type: str
    default: airflow-worker.service
"""

EXAMPLES = r"""
serial: "{{ groups['workers'] | airflow_ops.celery.worker_batch(hostvars, site_worker_batch) }}"
"""

RETURN = r"""
_value:
  description: C(100%) or O(batch).
  type: raw
"""

ALL_AT_ONCE = "100%"


def worker_batch(hosts, hostvars, batch, unit="airflow-worker.service"):
    for host in hosts or []:
        state = (hostvars.get(host) or {}).get("__airflow_common_state")
        units = state.get("units") if isinstance(state, dict) else None
        if not isinstance(units, dict) or unit not in units:
            return batch  # not probed in this run: it may run a worker
        if not units[unit].get("stopped"):  # active, activating, deactivating, reloading
            return batch
    return ALL_AT_ONCE if hosts else batch


class FilterModule:
    def filters(self):
        return {"worker_batch": worker_batch}
