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
FragmentPath=/etc/systemd/system/airflow-worker.service

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
                                               "enabled": "enabled", "running": True, "stopped": False,
                                               "path": "/etc/systemd/system/airflow-worker.service"}
    assert units["airflow-flower.service"]["running"] is False
    assert units["airflow-cleanup-db.timer"]["load"] == "not-found"
    assert units["airflow-cleanup-db.timer"]["enabled"] == ""


def test_a_unit_without_a_block_counts_as_not_found():
    units = host_state.parse_show("", ["airflow-worker.service"])
    assert units == {"airflow-worker.service": {"load": "not-found", "active": "inactive", "sub": "dead",
                                                "enabled": "", "running": False, "stopped": True, "path": ""}}


def test_an_active_but_disabled_unit_is_not_running_as_wanted():
    text = "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=disabled\n"
    assert host_state.parse_show(text, ["a.service"])["a.service"]["running"] is False


@pytest.mark.parametrize("active, stopped", [("active", False), ("activating", False), ("deactivating", False),
                                             ("reloading", False), ("inactive", True), ("failed", True)])
def test_only_an_inactive_or_failed_unit_counts_as_stopped(active, stopped):
    text = f"Id=a.service\nLoadState=loaded\nActiveState={active}\nSubState=x\nUnitFileState=enabled\n"
    assert host_state.parse_show(text, ["a.service"])["a.service"]["stopped"] is stopped


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


def test_installed_packages_get_their_version_and_others_none():
    text = ("python3\tii \t3.11.2-1+b1\n"
            "python3-venv\trc \t3.11.2-1+b1\n"  # removed, its configuration files left
            "git\tiU \t1:2.39.5-0+deb12u2\n")  # unpacked, not configured
    packages = host_state.parse_dpkg(text, ["python3", "python3-venv", "git", "redis-server"])
    assert packages == {"python3": "3.11.2-1+b1", "python3-venv": None, "git": None, "redis-server": None}
    assert host_state.missing(packages) == ["python3-venv", "git", "redis-server"]


def test_a_package_dpkg_did_not_name_is_none():
    assert host_state.parse_dpkg("", ["python3"]) == {"python3": None}


def test_links_give_their_target_and_anything_else_none(tmp_path):
    (tmp_path / "venvs").mkdir()
    (tmp_path / "venv").symlink_to(tmp_path / "venvs")
    (tmp_path / "plain").write_text("")
    links = host_state.read_links([str(tmp_path / "venv"), str(tmp_path / "plain"), str(tmp_path / "absent")])
    assert links == {str(tmp_path / "venv"): str(tmp_path / "venvs"), str(tmp_path / "plain"): None,
                     str(tmp_path / "absent"): None}


def test_accounts_of_this_machine_and_missing_ones():
    import grp
    import os
    import pwd

    me = pwd.getpwuid(os.getuid())
    users = host_state.read_users([me.pw_name, "no-such-user-airflow-ops"])
    assert users[me.pw_name] == {"group": grp.getgrgid(me.pw_gid).gr_name, "home": me.pw_dir, "shell": me.pw_shell}
    assert users["no-such-user-airflow-ops"] is None
    group = grp.getgrgid(os.getgid()).gr_name
    assert host_state.read_groups([group, "no-such-group-airflow-ops"]) == {
        group: {"gid": os.getgid()}, "no-such-group-airflow-ops": None}
