"""What retiring the components a host left means (plugins/filter/retire_plan.py), from what the
probe (host_state) says of their units. Pure Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


retire_plan = load("retire_plan", "plugins/filter/retire_plan.py").retire_plan
host_state = load("host_state", "plugins/modules/host_state.py")

UNITS = {"api-server": "airflow-api-server", "scheduler": "airflow-scheduler", "worker": "airflow-worker",
         "flower": "airflow-flower"}
FILES = {"flower": ["/etc/airflow/flower.env", "/etc/airflow/flowerconfig.py"]}


def probe(**units):
    """host_state's answer for these units: name=(ActiveState, FragmentPath)."""
    show = "\n\n".join(f"Id={name}.service\nLoadState=loaded\nActiveState={active}\nSubState=x\n"
                       f"UnitFileState=enabled\nFragmentPath={path}" for name, (active, path) in units.items())
    return host_state.parse_show(show, [f"{unit}.service" for unit in UNITS.values()])


def test_a_worker_that_left_workers_is_drained_stopped_and_removed():
    state = probe(**{"airflow-worker": ("active", "/etc/systemd/system/airflow-worker.service"),
                     "airflow-scheduler": ("active", "/etc/systemd/system/airflow-scheduler.service")})
    plan = retire_plan(UNITS, ["scheduler"], state, FILES)
    assert plan["retired"] == ["airflow-worker"]
    assert plan["drain"] is True
    assert plan["files"] == ["/etc/systemd/system/airflow-worker.service"] + FILES["flower"]
    assert plan["unknown"] == []


def test_a_stopped_worker_is_removed_without_a_drain():
    state = probe(**{"airflow-worker": ("failed", "/etc/systemd/system/airflow-worker.service")})
    plan = retire_plan(UNITS, [], state, FILES)
    assert plan["retired"] == ["airflow-worker"]
    assert plan["drain"] is False


def test_a_host_that_ran_none_of_them_retires_nothing():
    plan = retire_plan(UNITS, ["worker"], probe(**{"airflow-worker": ("active", "/etc/systemd/system/airflow-worker.service")}), FILES)
    assert (plan["retired"], plan["drain"]) == ([], False)
    assert plan["units"] == ["airflow-api-server.service", "airflow-scheduler.service", "airflow-flower.service"]


def test_a_unit_not_of_this_collection_is_left_alone():
    """A unit file elsewhere (a package's, under /lib/systemd) is not the collection's to remove."""
    state = probe(**{"airflow-flower": ("active", "/lib/systemd/system/airflow-flower.service")})
    assert retire_plan(UNITS, ["worker"], state, FILES)["retired"] == []


def test_flowers_logins_go_with_its_unit():
    state = probe(**{"airflow-flower": ("active", "/etc/systemd/system/airflow-flower.service")})
    plan = retire_plan(UNITS, ["worker", "api-server", "scheduler"], state, FILES)
    assert plan["retired"] == ["airflow-flower"]
    assert plan["files"] == ["/etc/systemd/system/airflow-flower.service"] + FILES["flower"]
    assert plan["drain"] is False


def test_units_systemd_was_not_asked_about_are_unknown():
    """The decommission playbook has no earlier probe: retire.yml asks systemd first."""
    plan = retire_plan(UNITS, ["scheduler"], {}, FILES)
    assert plan["unknown"] == ["airflow-api-server.service", "airflow-worker.service", "airflow-flower.service"]
    assert (plan["retired"], plan["drain"]) == ([], False)
