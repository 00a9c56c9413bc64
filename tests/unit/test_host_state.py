"""The host_state module's parsing of `systemctl show` and its reading of stamps
(plugins/modules/host_state.py). Pure Python on a temporary directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("host_state", ROOT / "plugins" / "modules" / "host_state.py")
host_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(host_state)

SHOW = """Id=airflow-worker.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

Id=airflow-flower.service
LoadState=loaded
ActiveState=failed
SubState=failed
UnitFileState=enabled

Id=airflow-cleanup-db.timer
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
"""

UNITS = ["airflow-worker.service", "airflow-flower.service", "airflow-cleanup-db.timer"]


def test_each_unit_gets_its_state():
    units = host_state.parse_show(SHOW, UNITS)
    assert units["airflow-worker.service"] == {"load": "loaded", "active": "active", "sub": "running",
                                               "enabled": "enabled", "running": True}
    assert units["airflow-flower.service"]["running"] is False
    assert units["airflow-cleanup-db.timer"]["load"] == "not-found"
    assert units["airflow-cleanup-db.timer"]["enabled"] == ""


def test_a_unit_without_a_block_counts_as_not_found():
    units = host_state.parse_show("", ["airflow-worker.service"])
    assert units == {"airflow-worker.service": {"load": "not-found", "active": "inactive", "sub": "dead",
                                                "enabled": "", "running": False}}


def test_an_active_but_disabled_unit_is_not_running_as_wanted():
    text = "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=disabled\n"
    assert host_state.parse_show(text, ["a.service"])["a.service"]["running"] is False


def test_a_block_of_a_unit_not_asked_for_is_ignored():
    assert set(host_state.parse_show(SHOW, ["airflow-worker.service"])) == {"airflow-worker.service"}


def test_stamps_are_read_and_a_missing_one_is_none(tmp_path):
    (tmp_path / "stamp").write_text("apache-airflow[celery]==3.1.3 uv lock-sha1=abc")
    files = host_state.read_files([str(tmp_path / "stamp"), str(tmp_path / "absent")])
    assert files == {str(tmp_path / "stamp"): "apache-airflow[celery]==3.1.3 uv lock-sha1=abc",
                     str(tmp_path / "absent"): None}


def test_a_large_file_is_refused(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * (host_state.MAX_READ + 1))
    with pytest.raises(ValueError, match="larger than"):
        host_state.read_files([str(tmp_path / "big")])
