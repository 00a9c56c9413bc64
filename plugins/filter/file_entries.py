# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.file_entries: the files of a list of items (units, timers) as entries
for airflow_ops.celery.file_set, each rendered from one template with the item as a variable."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: file_entries
short_description: One file_set entry per item, rendered from a template
version_added: "0.1.0"
description:
  - For each item (a dict), an entry of O(airflow_ops.celery.file_set#module:files) whose path is
    O(path) with the item's keys filled in (Python C(str.format)), rendered from O(template) with
    the item as variable O(var).
options:
  _input: {description: The items (dicts)., type: list, elements: dict, required: true}
  path: {description: "Path on the host, e.g. C(/etc/systemd/system/{name}.service).", type: str, required: true}
  template: {description: The template (the role's templates directory)., type: str, required: true}
  var: {description: The name under which the template sees the item., type: str, required: true}
  mode: {description: Octal mode of the files., type: str, default: "0644"}
  owner: {description: Owner., type: str, default: root}
  group: {description: Group., type: str, default: root}
"""

EXAMPLES = r"""
files: "{{ units | airflow_ops.celery.file_entries('/etc/systemd/system/{name}.service', 'unit.service.j2', 'unit') }}"
"""

RETURN = r"""
_value: {description: The entries., type: list, elements: dict}
"""


def file_entries(items, path, template, var, mode="0644", owner="root", group="root"):
    entries = []
    for item in items or []:
        try:
            target = path.format(**item)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise AnsibleFilterError(f"file_entries: {path!r} names what the item lacks ({exc}): {item!r}") from None
        entries.append({"path": target, "template": template, "vars": {var: item}, "mode": mode,
                        "owner": owner, "group": group})
    return entries


class FilterModule:
    def filters(self):
        return {"file_entries": file_entries}
