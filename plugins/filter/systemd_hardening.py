# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.systemd_hardening: the one hardening block of the collection's units.

Every unit the collection writes or drops in (the Airflow components, the cleanups, the Redis and
PostgreSQL exporters, the StatsD receiver) runs as an unprivileged user and gets these lines; a
unit says only how it differs (what it writes, whether it needs the network, ...)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: systemd_hardening
short_description: The [Service] hardening lines of the collection's units
version_added: "0.1.0"
description:
  - Returns the sandboxing lines every unit of the collection gets (no new privileges, no
    capabilities, a read-only system, private /tmp and devices, kernel and control groups
    protected, native system calls of the @system-service set only, ...), adjusted by O(_input).
  - Not C(ProtectProc=invisible) for any unit, Airflow's task supervisor makes itself
    non-dumpable, which hides it from its own parent under hidepid; the worker then fails every task.
options:
  _input:
    description: How the unit differs from the default.
    type: dict
    suboptions:
      read_write_paths: {description: Paths the unit writes (C(ReadWritePaths=))., type: list, elements: str, default: []}
      network: {description: Whether the unit talks over IP; without, C(PrivateNetwork=) and Unix sockets only., type: bool, default: true}
      memory_deny_write_execute:
        description: C(MemoryDenyWriteExecute=); Airflow's units leave it off (Python extensions may map W+X memory).
        type: bool
        default: true
      remove_ipc: {description: "C(RemoveIPC=): for a unit whose user runs nothing else.", type: bool, default: false}
      umask: {description: The unit's C(UMask=)., type: str, default: "0077"}
      system_call_deny: {description: "Further system call sets refused (C(SystemCallFilter=~...))", type: list, elements: str, default: []}
"""

EXAMPLES = r"""
# In a unit template, under [Service]:
# {{ {'read_write_paths': ['/opt/airflow/logs'], 'umask': '0027'} | airflow_ops.celery.systemd_hardening }}
"""

RETURN = r"""
_value: {description: The lines, joined by newlines (no trailing newline)., type: str}
"""

OPTIONS = {"read_write_paths": [], "network": True, "memory_deny_write_execute": True, "remove_ipc": False,
           "umask": "0077", "system_call_deny": []}


def systemd_hardening(options=None):
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise AnsibleFilterError(f"systemd_hardening: unknown options {unknown}; known: {sorted(OPTIONS)}")
    opts = dict(OPTIONS, **options)
    for name in ("read_write_paths", "system_call_deny"):
        if any(not isinstance(item, str) or not item or any(c.isspace() for c in item) for item in opts[name]):
            raise AnsibleFilterError(f"systemd_hardening: {name} must list paths or names without spaces: {opts[name]!r}")
    umask = str(opts["umask"])
    if len(umask) != 4 or any(c not in "01234567" for c in umask):
        raise AnsibleFilterError(f"systemd_hardening: umask must be four octal digits, not {umask!r}")
    lines = ["NoNewPrivileges=true", "PrivateTmp=true", "PrivateDevices=true"]
    if not opts["network"]:
        lines.append("PrivateNetwork=true")
    lines.append("ProtectSystem=strict")
    if opts["read_write_paths"]:
        lines.append("ReadWritePaths=" + " ".join(opts["read_write_paths"]))
    lines += ["ProtectHome=true", "ProtectKernelTunables=true", "ProtectKernelModules=true", "ProtectKernelLogs=true",
              "ProtectControlGroups=true", "ProtectClock=true", "ProtectHostname=true", "RestrictSUIDSGID=true",
              "RestrictRealtime=true", "RestrictNamespaces=true", "LockPersonality=true"]
    if opts["memory_deny_write_execute"]:
        lines.append("MemoryDenyWriteExecute=true")
    lines.append("RestrictAddressFamilies=" + ("AF_UNIX AF_INET AF_INET6" if opts["network"] else "AF_UNIX"))
    lines += ["CapabilityBoundingSet=", "AmbientCapabilities=", "SystemCallArchitectures=native",
              "SystemCallFilter=@system-service"]
    if opts["system_call_deny"]:
        lines.append("SystemCallFilter=~" + " ".join(opts["system_call_deny"]))
    lines.append("SystemCallErrorNumber=EPERM")
    if opts["remove_ipc"]:
        lines.append("RemoveIPC=true")
    lines.append("UMask=" + umask)
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {"systemd_hardening": systemd_hardening}
