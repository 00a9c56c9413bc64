# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.log_archive_problems: what in a decommissioned worker's task-log
archive must not be unpacked on an api server.

The worker's logs folder is writable by task code (it runs as `airflow` there), so the archive
the decommission playbook packs from it is untrusted: before root unpacks it into an api server's
logs folder, every member must be a regular file or a directory under a `dag_id=*` folder, with a
relative path that stays inside it. Anything else (a symlink or hard link, a device, an absolute
path, a `..`) is named here and the playbook stops."""

from __future__ import annotations

import tarfile
from pathlib import PurePosixPath

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: log_archive_problems
short_description: The members of a task-log archive that may not be unpacked
version_added: "0.1.0"
description:
  - Reads a gzip-compressed tar archive on the controller and returns one line per member that is
    not a regular file or directory under a C(dag_id=*) folder with a relative path inside it.
options:
  _input:
    description: Path of the archive on the controller.
    type: path
    required: true
"""

EXAMPLES = r"""
__decommission_log_problems: "{{ __decommission_archive | airflow_ops.celery.log_archive_problems }}"
"""

RETURN = r"""
_value:
  description: "One line per member that may not be unpacked, C(<member>: <reason>); empty when all may."
  type: list
  elements: str
"""

PREFIX = "dag_id="


def member_problem(member: tarfile.TarInfo) -> str | None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        return "a path outside the logs folder"
    if not path.parts or not path.parts[0].startswith(PREFIX):
        return f"not under a {PREFIX}* folder"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or directory (a link or a device)"
    return None


def log_archive_problems(path):
    try:
        with tarfile.open(str(path), "r:gz") as archive:
            members = archive.getmembers()
    except (OSError, tarfile.TarError) as err:
        raise AnsibleFilterError(f"log_archive_problems: cannot read {path}: {err}") from err
    problems = []
    for member in members:
        reason = member_problem(member)
        if reason:
            problems.append(f"{member.name}: {reason}")
    return problems


class FilterModule:
    def filters(self):
        return {"log_archive_problems": log_archive_problems}
