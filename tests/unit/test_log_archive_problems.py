"""The decommissioned worker's task-log archive (plugins/filter/log_archive_problems.py): task code
could write anything into the worker's logs folder, so only regular files and directories under
dag_id=* folders may be unpacked by root on an api server. Pure Python, archives made in tmp_path."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("log_archive_problems", ROOT / "plugins/filter/log_archive_problems.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
problems = module.log_archive_problems

LOG = "dag_id=etl/run_id=manual__1/task_id=load/attempt=1.log"


def archive(tmp_path, *members) -> Path:
    """A .tar.gz of (name, type[, link target]) members; files hold one line."""
    path = tmp_path / "logs.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, *target in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b""
            if kind == tarfile.REGTYPE:
                data = b"log line\n"
                info.size = len(data)
            if target:
                info.linkname = target[0]
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_a_plain_log_tree_has_no_problem(tmp_path):
    path = archive(tmp_path, ("dag_id=etl", tarfile.DIRTYPE), ("dag_id=etl/run_id=manual__1", tarfile.DIRTYPE),
                   (LOG, tarfile.REGTYPE))
    assert problems(str(path)) == []


@pytest.mark.parametrize(("member", "reason"), [
    (("dag_id=etl/shadow", tarfile.SYMTYPE, "/etc/shadow"), "not a regular file or directory (a link or a device)"),
    (("dag_id=etl/passwd", tarfile.LNKTYPE, "etc/passwd"), "not a regular file or directory (a link or a device)"),
    (("dag_id=etl/dev", tarfile.CHRTYPE), "not a regular file or directory (a link or a device)"),
    (("dag_id=etl/../../../etc/cron.d/x", tarfile.REGTYPE), "a path outside the logs folder"),
    (("/etc/cron.d/x", tarfile.REGTYPE), "a path outside the logs folder"),
    ((".bashrc", tarfile.REGTYPE), "not under a dag_id=* folder"),
    (("venv/bin/airflow", tarfile.REGTYPE), "not under a dag_id=* folder"),
])
def test_what_could_escape_or_plant_code_is_named(tmp_path, member, reason):
    path = archive(tmp_path, (LOG, tarfile.REGTYPE), member)
    found = problems(str(path))
    assert found == [f"{member[0]}: {reason}"], found


def test_every_bad_member_is_listed(tmp_path):
    path = archive(tmp_path, ("dag_id=a/l1", tarfile.SYMTYPE, "/"), (LOG, tarfile.REGTYPE), ("x", tarfile.REGTYPE))
    assert [line.split(":")[0] for line in problems(str(path))] == ["dag_id=a/l1", "x"]


def test_an_unreadable_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "logs.tar.gz"
    bad.write_text("not gzip")
    with pytest.raises(AnsibleFilterError, match="cannot read"):
        problems(str(bad))
