#!/usr/bin/python
# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Module airflow_ops.celery.file_set: a set of directories and files in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_set
short_description: Ensure a set of directories and files, with owners and modes, in one call
version_added: "0.1.0"
description:
  - Creates the listed directories and writes the listed files whose content, owner, group or mode
    differ, in one round trip instead of one C(file) or C(copy) task per item; a re-run where
    everything is in place only reads.
  - Files are written to a temporary file beside the destination and renamed into place, so a
    reader never sees half a file.
  - In an O(exclusive) directory, whatever is not listed (files, links, directories) is removed,
    except paths matching O(keep).
  - The action plugin of the same name reads O(files[].src) on the controller (the role's C(files)
    directory or an absolute path); the module gets the content only, never printed.
options:
  directories:
    description: Directories, created in the order given (list a parent before its children).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner name.
        type: str
        default: root
      group:
        description: Group name.
        type: str
        default: root
      mode:
        description: 'Octal mode as a string (C("0750")).'
        type: str
        required: true
  files:
    description: Regular files.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file on the host.
        type: path
        required: true
      src:
        description: File on the controller (action plugin).
        type: str
      content:
        description: Text content (instead of O(files[].src)).
        type: str
      template:
        description: A template the action plugin renders on the controller as C(ansible.builtin.template)
          does (the role's C(templates) directory), instead of O(files[].src).
        type: str
      vars:
        description: Variables added to the task's for rendering O(files[].template) (like a loop variable).
        type: dict
      content_b64:
        description: The content, base64-encoded; the action plugin sets it from O(files[].src) or
          O(files[].content).
        type: str
      owner:
        description: Owner name.
        type: str
        default: root
      group:
        description: Group name.
        type: str
        default: root
      mode:
        description: 'Octal mode as a string (C("0640")).'
        type: str
        required: true
      validate:
        description:
          - A command that checks the new content before it replaces the file, C(%s) standing for
            a temporary file beside the destination that holds it (as C(ansible.builtin.template)'s
            C(validate)). When it fails, nothing of the set after this file is written and the task
            fails with its output; the file keeps its old content.
          - Not run in check mode, nor when the content is unchanged.
        type: str
  trees:
    description:
      - Directories on the controller copied whole; the action plugin lists them.
      - O(trees[].path) and its subdirectories get O(trees[].directory_mode), its regular files
        O(trees[].file_mode); symbolic links and paths matching O(keep) are left out, and
        O(trees[].path) is O(exclusive).
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: Directory on the controller.
        type: path
        required: true
      path:
        description: Directory on the host.
        type: path
        required: true
      owner:
        description: Owner name.
        type: str
        default: root
      group:
        description: Group name.
        type: str
        default: root
      directory_mode:
        description: Mode of the directories.
        type: str
        default: "0750"
      file_mode:
        description: Mode of the files.
        type: str
        default: "0640"
  absent:
    description: Paths removed where they exist (a directory with its content).
    type: list
    elements: path
    default: []
  exclusive:
    description: Directories holding nothing but what O(directories) and O(files) list under them.
    type: list
    elements: path
    default: []
  keep:
    description: Regular expression (Python C(re.search)) on the path relative to its O(exclusive)
      directory; matching paths are never removed.
    type: str
author:
  - airflow_ops maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Airflow's directories and root-owned helpers
  airflow_ops.celery.file_set:
    directories:
      - {path: /opt/airflow/libexec, group: airflow, mode: "0750"}
    files:
      - {path: /opt/airflow/libexec/unit_health.py, src: unit_health.py, group: airflow, mode: "0755"}
"""

RETURN = r"""
changed_paths:
  description: Paths created, rewritten, given another owner or mode, or removed (or that would be,
    in check mode).
  returned: always
  type: list
  elements: str
"""

import base64
import grp
import os
import pwd
import re
import shlex
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


class FileSetError(Exception):
    """An item that cannot be put in place (unknown user, path in the way)."""


def _ids(owner, group):
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise FileSetError("no user named %s on this host" % owner)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileSetError("no group named %s on this host" % group)
    return uid, gid


def _wanted_ids(item, check_mode):
    """(uid, gid) of the item's owner and group; None in check mode when one does not exist yet
    (an earlier task of the same run creates it): the item would change."""
    try:
        return _ids(item.get("owner") or "root", item.get("group") or "root")
    except FileSetError:
        if check_mode:
            return None
        raise


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _attrs_differ(st, uid, gid, mode):
    return st.st_uid != uid or st.st_gid != gid or stat.S_IMODE(st.st_mode) != mode


def _set_attrs(path, uid, gid, mode):
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)


def ensure_directory(item, check_mode):
    """Create the directory or fix its owner and mode. Returns whether anything (would) change."""
    path, mode = item["path"], int(item["mode"], 8)
    ids = _wanted_ids(item, check_mode)
    if ids is None:
        return True
    uid, gid = ids
    st = _lstat(path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise FileSetError("%s exists and is not a directory" % path)
    if st is not None and not _attrs_differ(st, uid, gid, mode):
        return False
    if not check_mode:
        if st is None:
            os.makedirs(path, mode=mode)
        _set_attrs(path, uid, gid, mode)
    return True


def ensure_file(item, check_mode, run=None):
    """Write the file when its content differs; fix its owner and mode. Returns whether anything
    (would) change. With item["validate"], `run` (argv -> (rc, stdout, stderr)) checks the new
    content in its temporary file before it replaces the file."""
    path, mode = item["path"], int(item["mode"], 8)
    ids = _wanted_ids(item, check_mode)
    if ids is None:
        return True
    uid, gid = ids
    wanted = item["data"]
    st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise FileSetError("%s exists and is not a regular file" % path)
    same_content = False
    if st is not None and st.st_size == len(wanted):
        with open(path, "rb") as handle:
            same_content = handle.read() == wanted
    if same_content:
        if not _attrs_differ(st, uid, gid, mode):
            return False
        if not check_mode:
            _set_attrs(path, uid, gid, mode)
        return True
    if not check_mode:
        directory = os.path.dirname(path)
        fd, tmp = tempfile.mkstemp(prefix=".file_set.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(wanted)
            _set_attrs(tmp, uid, gid, mode)
            if item.get("validate"):
                _validate(item["validate"], path, tmp, run)
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    return True


def _validate(command, path, tmp, run):
    if "%s" not in command:
        raise FileSetError("%s: validate must contain %%s (the file to check): %s" % (path, command))
    argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(command)]
    rc, out, err = run(argv)
    if rc != 0:
        raise FileSetError("%s: the new content failed `%s` (rc %d), the file is unchanged: %s"
                           % (path, command, rc, (err or out).strip()[-2000:]))


def extra_paths(directory, wanted, keep=None):
    """The paths under `directory` that are not in `wanted` (absolute paths) and whose path relative
    to `directory` does not match `keep`: deepest first, a removed directory's content not listed."""
    if not os.path.isdir(directory):
        return []
    pattern = re.compile(keep) if keep else None
    found = []
    for root, dirs, files in os.walk(directory, topdown=True, followlinks=False):
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if path not in wanted and not (pattern and pattern.search(rel)):
                found.append(path)
        for name in sorted(dirs):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if pattern and pattern.search(rel):
                dirs.remove(name)
            elif path not in wanted:
                found.append(path)
                dirs.remove(name)  # removed whole: its content is not listed
    return sorted(found, key=lambda p: (-p.count(os.sep), p))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def apply(directories, files, exclusive=(), keep=None, check_mode=False, absent=(), run=None):
    """Put the set in place. Returns the paths that changed (or would, in check mode). `run` runs a
    file's validate command (argv -> (rc, stdout, stderr))."""
    changed = []
    for path in absent:
        if os.path.lexists(path):
            if not check_mode:
                _remove(path)
            changed.append(path)
    for item in directories:
        if ensure_directory(item, check_mode):
            changed.append(item["path"])
    wanted = {os.path.normpath(i["path"]) for i in list(directories) + list(files)}
    removals = []
    for directory in exclusive:
        removals.extend(extra_paths(os.path.normpath(directory), wanted, keep))
    for path in removals:
        if not check_mode:
            _remove(path)
        changed.append(path)
    for item in files:
        if ensure_file(item, check_mode, run):
            changed.append(item["path"])
    return changed


def _data(item):
    if item.get("content_b64") is not None:
        return base64.b64decode(item["content_b64"])
    if item.get("content") is not None:
        return item["content"].encode("utf-8")
    raise FileSetError("%s: no content (a src is read by the action plugin)" % item["path"])


def main():
    entry = dict(path=dict(type="path", required=True), owner=dict(type="str", default="root"),
                 group=dict(type="str", default="root"), mode=dict(type="str", required=True))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[], options=entry),
            files=dict(type="list", elements="dict", default=[],
                       options=dict(entry, src=dict(type="str"), content=dict(type="str", no_log=True),
                                    template=dict(type="str"), vars=dict(type="dict"),
                                    content_b64=dict(type="str", no_log=True), validate=dict(type="str"))),
            absent=dict(type="list", elements="path", default=[]),
            exclusive=dict(type="list", elements="path", default=[]),
            keep=dict(type="str"),
            # Expanded into files and directories by the action plugin on the controller.
            trees=dict(type="list", elements="dict", default=[],
                       options=dict(src=dict(type="path", required=True), path=dict(type="path", required=True),
                                    owner=dict(type="str", default="root"), group=dict(type="str", default="root"),
                                    directory_mode=dict(type="str", default="0750"), file_mode=dict(type="str", default="0640"))),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        files = [dict(item, data=_data(item)) for item in params["files"]]
        changed = apply(params["directories"], files, params["exclusive"], params["keep"], module.check_mode,
                        params["absent"], run=module.run_command)
    except (FileSetError, OSError, ValueError) as exc:
        module.fail_json(msg="file_set: %s" % exc)
    module.exit_json(changed=bool(changed), changed_paths=changed)


if __name__ == "__main__":
    main()
