"""The file_set module's work on a real directory tree (plugins/modules/file_set.py): what it
creates, rewrites and removes, that a second pass changes nothing, and that check mode touches
nothing. Pure Python on a temporary directory, as the current user."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("file_set", ROOT / "plugins" / "modules" / "file_set.py")
file_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(file_set)

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def d(path, mode="0750"):
    return {"path": str(path), "owner": USER, "group": GROUP, "mode": mode}


def f(path, data, mode="0640"):
    return {"path": str(path), "owner": USER, "group": GROUP, "mode": mode, "data": data}


def mode_of(path) -> str:
    return oct(stat.S_IMODE(os.lstat(path).st_mode))


def test_creates_directories_and_files_then_changes_nothing(tmp_path):
    dirs = [d(tmp_path / "home"), d(tmp_path / "home" / "libexec", "0755")]
    files = [f(tmp_path / "home" / "libexec" / "a.py", b"print(1)\n", "0755"),
             f(tmp_path / "home" / "lock.txt", b"x==1\n", "0644")]
    changed = file_set.apply(dirs, files)
    assert changed == [i["path"] for i in dirs + files]
    assert (tmp_path / "home" / "libexec" / "a.py").read_bytes() == b"print(1)\n"
    assert mode_of(tmp_path / "home" / "libexec" / "a.py") == "0o755"
    assert mode_of(tmp_path / "home") == "0o750"
    assert file_set.apply(dirs, files) == []


def test_rewrites_only_a_file_whose_content_differs(tmp_path):
    same, other = tmp_path / "same", tmp_path / "other"
    same.write_bytes(b"keep")
    other.write_bytes(b"old")
    os.chmod(same, 0o640)
    os.chmod(other, 0o640)
    inode = os.stat(same).st_ino
    assert file_set.apply([], [f(same, b"keep"), f(other, b"new")]) == [str(other)]
    assert other.read_bytes() == b"new"
    assert os.stat(same).st_ino == inode  # untouched, not rewritten


def test_fixes_mode_without_rewriting(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"same")
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    assert file_set.apply([], [f(path, b"same", "0644")]) == [str(path)]
    assert mode_of(path) == "0o644"
    assert os.stat(path).st_ino == inode


def test_same_length_different_content_is_rewritten(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"abcd")
    os.chmod(path, 0o640)
    assert file_set.apply([], [f(path, b"abce")]) == [str(path)]
    assert path.read_bytes() == b"abce"


def test_check_mode_reports_and_touches_nothing(tmp_path):
    existing = tmp_path / "dags"
    existing.mkdir()
    os.chmod(existing, 0o700)
    (existing / "gone.py").write_bytes(b"old")
    dirs = [d(existing), d(tmp_path / "new")]
    files = [f(existing / "dag.py", b"dag")]
    changed = file_set.apply(dirs, files, exclusive=[str(existing)], check_mode=True)
    assert set(changed) == {str(existing), str(tmp_path / "new"), str(existing / "gone.py"), str(existing / "dag.py")}
    assert not (tmp_path / "new").exists()
    assert (existing / "gone.py").exists() and not (existing / "dag.py").exists()
    assert mode_of(existing) == "0o700"


def test_exclusive_removes_what_is_not_listed_and_keeps_matches(tmp_path):
    dags = tmp_path / "dags"
    (dags / "team" / "old").mkdir(parents=True)
    (dags / "team" / "old" / "x.py").write_bytes(b"x")
    (dags / "team" / "__pycache__").mkdir()
    (dags / "team" / "__pycache__" / "dag.cpython-311.pyc").write_bytes(b"c")
    (dags / "stale.py").write_bytes(b"s")
    (dags / ".hidden").write_bytes(b"h")
    os.symlink("/etc/passwd", dags / "link")
    dirs = [d(dags), d(dags / "team")]
    files = [f(dags / "team" / "dag.py", b"dag")]
    changed = file_set.apply(dirs, files, exclusive=[str(dags)], keep=r"(^|/)__pycache__(/|$)")
    assert not (dags / "team" / "old").exists()
    assert not (dags / "stale.py").exists() and not (dags / ".hidden").exists()
    assert not os.path.lexists(dags / "link")
    assert Path("/etc/passwd").exists()  # the link went, not its target
    assert (dags / "team" / "__pycache__" / "dag.cpython-311.pyc").exists()
    assert str(dags / "team" / "old") in changed and str(dags / "team" / "old" / "x.py") not in changed
    assert file_set.apply(dirs, files, exclusive=[str(dags)], keep=r"(^|/)__pycache__(/|$)") == []


def test_extra_paths_lists_deepest_first(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c").write_bytes(b"")
    (tmp_path / "z").write_bytes(b"")
    wanted = {str(tmp_path / "a")}
    assert file_set.extra_paths(str(tmp_path), wanted) == [str(tmp_path / "a" / "b"), str(tmp_path / "z")]


def test_missing_exclusive_directory_is_nothing_to_remove(tmp_path):
    assert file_set.extra_paths(str(tmp_path / "absent"), set()) == []


def test_a_directory_where_a_file_belongs_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(file_set.FileSetError, match="not a regular file"):
        file_set.apply([], [f(tmp_path / "a", b"x")])


def test_a_file_where_a_directory_belongs_is_refused(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    with pytest.raises(file_set.FileSetError, match="not a directory"):
        file_set.apply([d(tmp_path / "a")], [])


def test_unknown_owner_is_named(tmp_path):
    item = dict(d(tmp_path / "a"), owner="no-such-user-here")
    with pytest.raises(file_set.FileSetError, match="no user named no-such-user-here"):
        file_set.apply([item], [])


def test_no_partial_file_is_left_on_a_failed_write(tmp_path, monkeypatch):
    def boom(*_args, **_kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(file_set.os, "replace", boom)
    with pytest.raises(OSError):
        file_set.apply([], [f(tmp_path / "a", b"x")])
    assert list(tmp_path.iterdir()) == []


def test_check_mode_with_a_user_not_created_yet_reports_a_change(tmp_path):
    item = dict(d(tmp_path / "a"), group="no-such-group-yet")
    assert file_set.apply([item], [dict(f(tmp_path / "b", b""), owner="no-such-user-yet")],
                          check_mode=True) == [str(tmp_path / "a"), str(tmp_path / "b")]


def _action():
    import sys
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.airflow_ops.celery.plugins.action import file_set as action
    return action


def test_a_controller_tree_lists_directories_and_regular_files_without_links_or_caches(tmp_path):
    (tmp_path / "team" / "__pycache__").mkdir(parents=True)
    (tmp_path / "team" / "__pycache__" / "dag.pyc").write_bytes(b"")
    (tmp_path / "team" / "dag.py").write_bytes(b"")
    (tmp_path / "top.py").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "top.py", tmp_path / "alias.py")
    os.symlink(tmp_path / "team", tmp_path / "team-link")
    dirs, files = _action().expand_tree(str(tmp_path), r"(^|/)__pycache__(/|$)")
    assert dirs == ["empty", "team"]
    assert [rel for _path, rel in files] == ["team/dag.py", "top.py"]


def test_file_entries_names_each_file_after_its_item():
    sys_path = str(ROOT / ".collections")
    import sys
    sys.path.insert(0, sys_path)
    from ansible_collections.airflow_ops.celery.plugins.filter.file_entries import file_entries
    units = [{"name": "airflow-worker", "command": ["x"]}, {"name": "airflow-flower"}]
    entries = file_entries(units, "/etc/systemd/system/{name}.service", "unit.j2", "unit")
    assert [e["path"] for e in entries] == ["/etc/systemd/system/airflow-worker.service",
                                            "/etc/systemd/system/airflow-flower.service"]
    assert entries[0]["vars"] == {"unit": units[0]} and entries[0]["mode"] == "0644"
    with pytest.raises(Exception, match="names what the item lacks"):
        file_entries([{"id": 1}], "/x/{name}", "t.j2", "unit")


def test_absent_paths_go_and_a_missing_one_is_no_change(tmp_path):
    (tmp_path / "old.timer").write_bytes(b"")
    absent = [str(tmp_path / "old.timer"), str(tmp_path / "never.service")]
    assert file_set.apply([], [], check_mode=True, absent=absent) == [str(tmp_path / "old.timer")]
    assert (tmp_path / "old.timer").exists()
    assert file_set.apply([], [], absent=absent) == [str(tmp_path / "old.timer")]
    assert not (tmp_path / "old.timer").exists()
    assert file_set.apply([], [], absent=absent) == []


def run_argv(argv):
    """What the module's run_command does with an argv, for the tests."""
    import subprocess
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def test_validate_checks_the_new_content_before_it_replaces_the_file(tmp_path):
    rules = tmp_path / "rules"
    rules.write_bytes(b"good 1\n")
    check = "grep -q ^good %s"
    assert file_set.apply([], [dict(f(rules, b"good 2\n"), validate=check)], run=run_argv) == [str(rules)]
    assert rules.read_bytes() == b"good 2\n"
    with pytest.raises(file_set.FileSetError, match=r"the new content failed `grep -q \^good %s` \(rc 1\), the file is unchanged"):
        file_set.apply([], [dict(f(rules, b"bad\n"), validate=check)], run=run_argv)
    assert rules.read_bytes() == b"good 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules"]  # no temporary file left


def test_a_failed_validate_stops_the_files_after_it(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    with pytest.raises(file_set.FileSetError):
        file_set.apply([], [dict(f(first, b"bad"), validate="grep -q ^good %s"), f(second, b"x")], run=run_argv)
    assert not first.exists() and not second.exists()


def test_validate_runs_only_when_the_content_changes_and_never_in_check_mode(tmp_path):
    calls = []

    def run(argv):
        calls.append(argv)
        return 1, "", "would fail"
    rules = tmp_path / "rules"
    rules.write_bytes(b"same")
    os.chmod(rules, 0o640)
    assert file_set.apply([], [dict(f(rules, b"same"), validate="nft --check --file %s")], run=run) == []
    assert file_set.apply([], [dict(f(rules, b"new"), validate="nft --check --file %s")], check_mode=True, run=run) == [str(rules)]
    assert calls == []


def test_validate_names_the_file_in_its_argv_and_needs_the_placeholder(tmp_path):
    seen = []

    def run(argv):
        seen.append(argv)
        return 0, "", ""
    file_set.apply([], [dict(f(tmp_path / "rules", b"x"), validate="nft --check --file %s")], run=run)
    assert seen[0][:3] == ["nft", "--check", "--file"] and seen[0][3].startswith(str(tmp_path / ".file_set."))
    with pytest.raises(file_set.FileSetError, match="validate must contain %s"):
        file_set.apply([], [dict(f(tmp_path / "other", b"x"), validate="nft --check")], run=run)
