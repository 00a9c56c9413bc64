# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of airflow_ops.celery.file_set: reads each file's `src` on the controller (the
role's `files` directory, as ansible.builtin.copy finds it) and hands the module the content, so that
one module call on the host checks and writes the whole set."""

from __future__ import annotations

import base64
import os
import re

from ansible._internal._templating import _template_vars
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

ENTRY_KEYS = {"path", "src", "content", "template", "vars", "owner", "group", "mode", "validate"}
SOURCES = ("src", "content", "template")
TREE_KEYS = {"src", "path", "owner", "group", "directory_mode", "file_mode"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def expand_tree(src: str, keep: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The directories (relative paths) and regular files ((controller path, relative path)) under
    `src`, without symbolic links and without paths matching `keep`, sorted parents first."""
    pattern = re.compile(keep) if keep else None
    directories, files = [], []
    for root, dirs, names in os.walk(src, followlinks=False):
        rel_root = os.path.relpath(root, src)
        for name in sorted(dirs):
            rel = os.path.normpath(os.path.join(rel_root, name))
            if os.path.islink(os.path.join(root, name)) or (pattern and pattern.search(rel)):
                dirs.remove(name)
            else:
                directories.append(rel)
        for name in sorted(names):
            path, rel = os.path.join(root, name), os.path.normpath(os.path.join(rel_root, name))
            if os.path.isfile(path) and not os.path.islink(path) and not (pattern and pattern.search(rel)):
                files.append((path, rel))
    return sorted(directories), sorted(files, key=lambda item: item[1])


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        files = []
        for item in args.get("files") or []:
            unknown = set(item) - ENTRY_KEYS
            if unknown or len([key for key in SOURCES if key in item]) != 1 or ("vars" in item and "template" not in item):
                raise AnsibleActionFail(
                    f"file_set: each of files takes path, mode, owner, group, validate and one of src, content or "
                    f"template (with vars); got {sorted(item)} for {item.get('path')}")
            if "src" in item:
                data = self._read_src(item["src"])
            elif "template" in item:
                data = self._render(item["template"], item.get("vars") or {}, item["path"], task_vars)
            else:
                data = str(item["content"]).encode("utf-8")
            entry = {k: v for k, v in item.items() if k not in ("src", "content", "template", "vars")}
            entry["content_b64"] = _b64(data)
            files.append(entry)
        directories = list(args.get("directories") or [])
        exclusive = list(args.get("exclusive") or [])
        for tree in args.pop("trees", None) or []:
            if set(tree) - TREE_KEYS or not {"src", "path"} <= set(tree):
                raise AnsibleActionFail(f"file_set: each of trees takes src, path, owner, group, directory_mode "
                                        f"and file_mode; got {sorted(tree)}")
            src = os.path.expanduser(str(tree["src"]))
            if not os.path.isdir(src):
                raise AnsibleActionFail(f"file_set: {src} is not a directory on the controller")
            owner = {k: tree[k] for k in ("owner", "group") if k in tree}
            top = str(tree["path"]).rstrip("/")
            subdirs, tree_files = expand_tree(src, args.get("keep"))
            directories.append(dict(owner, path=top, mode=tree.get("directory_mode", "0750")))
            directories.extend(dict(owner, path=f"{top}/{rel}", mode=tree.get("directory_mode", "0750"))
                               for rel in subdirs)
            for path, rel in tree_files:
                with open(path, "rb") as handle:
                    data = handle.read()
                files.append(dict(owner, path=f"{top}/{rel}", mode=tree.get("file_mode", "0640"),
                                  content_b64=_b64(data)))
            exclusive.append(top)
        args.update(directories=directories, files=files, exclusive=exclusive)
        result.update(self._execute_module(module_name="airflow_ops.celery.file_set", module_args=args,
                                           task_vars=task_vars))
        return result

    def _render(self, template: str, extra_vars: dict, dest: str, task_vars: dict) -> bytes:
        """The template rendered as ansible.builtin.template renders it (its defaults: trim_blocks,
        \n newlines, ansible_managed and template_* names), with `vars` added to the task's."""
        try:
            source = self._find_needle("templates", template)
        except AnsibleError as exc:
            raise AnsibleActionFail(f"file_set: {exc}") from exc
        data = trust_as_template(self._loader.get_text_file_contents(source))
        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir, os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]
        variables = dict(task_vars, **extra_vars)
        variables.update(_template_vars.generate_ansible_template_vars(
            path=template, fullpath=source, dest_path=dest, include_ansible_managed="ansible_managed" not in variables))
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        rendered = templar.template(data, escape_backslashes=False,
                                    overrides=dict(trim_blocks=True, lstrip_blocks=False, newline_sequence="\n"))
        return ("" if rendered is None else str(rendered)).encode("utf-8")

    def _read_src(self, src: str) -> bytes:
        try:
            path = self._find_needle("files", src)
        except AnsibleError as exc:
            raise AnsibleActionFail(f"file_set: {exc}") from exc
        real = self._loader.get_real_file(path, decrypt=True)
        try:
            with open(real, "rb") as handle:
                return handle.read()
        finally:
            self._loader.cleanup_tmp_file(real)
