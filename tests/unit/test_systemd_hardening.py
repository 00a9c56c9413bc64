"""The one hardening block of the collection's units (plugins/filter/systemd_hardening.py): each
unit gets exactly the sandbox it had when every template spelled it out. Pure Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("systemd_hardening", ROOT / "plugins" / "filter" / "systemd_hardening.py")
systemd_hardening = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(systemd_hardening)
harden = systemd_hardening.systemd_hardening

COMMON = {"NoNewPrivileges=true", "PrivateTmp=true", "PrivateDevices=true", "ProtectSystem=strict", "ProtectHome=true",
          "ProtectKernelTunables=true", "ProtectKernelModules=true", "ProtectKernelLogs=true",
          "ProtectControlGroups=true", "ProtectClock=true", "ProtectHostname=true", "RestrictSUIDSGID=true",
          "RestrictRealtime=true", "RestrictNamespaces=true", "LockPersonality=true", "CapabilityBoundingSet=",
          "AmbientCapabilities=", "SystemCallArchitectures=native", "SystemCallFilter=@system-service",
          "SystemCallErrorNumber=EPERM"}
IP = "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"


def lines(options=None):
    out = harden(options).split("\n")
    assert len(out) == len(set(out)), out
    return set(out)


def test_airflow_component_units():
    options = {"read_write_paths": ["/opt/airflow/logs", "/opt/airflow/auth"], "memory_deny_write_execute": False,
               "remove_ipc": True, "umask": "0027"}
    assert lines(options) == COMMON | {IP, "ReadWritePaths=/opt/airflow/logs /opt/airflow/auth", "RemoveIPC=true",
                                       "UMask=0027"}


def test_cleanups_without_network():
    options = {"read_write_paths": ["/opt/airflow/logs"], "network": False, "memory_deny_write_execute": False,
               "remove_ipc": True, "umask": "0027"}
    assert lines(options) == COMMON | {"PrivateNetwork=true", "RestrictAddressFamilies=AF_UNIX",
                                       "ReadWritePaths=/opt/airflow/logs", "RemoveIPC=true", "UMask=0027"}


def test_cleanups_with_network():
    options = {"read_write_paths": ["/opt/airflow/logs"], "memory_deny_write_execute": False, "remove_ipc": True,
               "umask": "0027"}
    assert "PrivateNetwork=true" not in lines(options)
    assert IP in lines(options)


def test_exporters_get_the_defaults():
    assert lines() == COMMON | {IP, "MemoryDenyWriteExecute=true", "UMask=0077"}


def test_statsd_receiver_refuses_privileged_and_resource_calls_too():
    assert lines({"system_call_deny": ["@privileged", "@resources"]}) == COMMON | {
        IP, "MemoryDenyWriteExecute=true", "SystemCallFilter=~@privileged @resources", "UMask=0077"}


def test_the_deny_list_follows_the_allow_list():
    # systemd applies SystemCallFilter= lines in order: the ~ line must narrow the allowed set.
    out = harden({"system_call_deny": ["@privileged"]}).split("\n")
    assert out.index("SystemCallFilter=~@privileged") == out.index("SystemCallFilter=@system-service") + 1


def test_never_hides_processes():
    assert not any(line.startswith("ProtectProc") for line in lines())


@pytest.mark.parametrize("options", [{"umask": "027"}, {"umask": "0o27"}, {"read_write_paths": ["/a b"]},
                                     {"read_write_paths": [""]}, {"system_call_deny": ["@a\n@b"]}, {"unknown": 1}])
def test_bad_options_are_refused(options):
    with pytest.raises(AnsibleFilterError, match="systemd_hardening"):
        harden(options)
