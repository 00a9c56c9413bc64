"""The worker play's batch size (plugins/filter/worker_batch.py): all at once only where the probe
found no worker running on any host of the play. Pure Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("worker_batch", ROOT / "plugins" / "filter" / "worker_batch.py")
worker_batch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker_batch)
batch = worker_batch.worker_batch
_spec = importlib.util.spec_from_file_location("host_state", ROOT / "plugins" / "modules" / "host_state.py")
host_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(host_state)

UNIT = "airflow-worker.service"


def probed(active):
    """A host's probe as host_state returns it (its parser on `systemctl show` output)."""
    show = f"Id={UNIT}\nLoadState=loaded\nActiveState={active}\nSubState=x\nUnitFileState=enabled\nFragmentPath=/etc/systemd/system/{UNIT}\n"
    return {"__airflow_common_state": {"units": host_state.parse_show(show, [UNIT])}}


def test_a_new_cluster_starts_every_worker_at_once():
    hostvars = {"w1": probed("inactive"), "w2": probed("inactive")}
    assert batch(["w1", "w2"], hostvars, 1) == "100%"


def test_failed_workers_run_no_task_either():
    assert batch(["w1", "w2"], {"w1": probed("failed"), "w2": probed("inactive")}, 1) == "100%"


def test_one_running_worker_keeps_the_users_batch():
    hostvars = {"w1": probed("inactive"), "w2": probed("active"), "w3": probed("inactive")}
    assert batch(["w1", "w2", "w3"], hostvars, "30%") == "30%"


def test_a_worker_starting_or_stopping_counts_as_running():
    for state in ("activating", "deactivating", "reloading"):
        assert batch(["w1"], {"w1": probed(state)}, 1) == 1, state


def test_a_host_without_a_probe_counts_as_running():
    # Outside --limit, unreachable, or failed before the probe: the rolling batches stay.
    assert batch(["w1", "w2"], {"w1": probed("inactive"), "w2": {}}, 1) == 1
    assert batch(["w1"], {}, 2) == 2
    assert batch(["w1"], {"w1": {"__airflow_common_state": {"skipped": True}}}, 1) == 1


def test_no_workers_keeps_the_batch():
    assert batch([], {}, 1) == 1
