# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of airflow_ops.celery.cluster_plan: reads the inventory, plans on the controller."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.airflow_ops.celery.plugins.plugin_utils import cluster_plan, dag_bundles

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


def digest(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        unknown = set(args) - {"only", "limit_notes", "leaving", "database_before"}
        if (unknown or args.get("only", "plan") not in ("plan", "peers") or not isinstance(args.get("leaving", []), list)
                or args.get("database_before") not in (None,) + cluster_plan.DATABASE_BEFORE):
            return dict(result, failed=True, msg="cluster_plan takes `only: plan` (default) or `only: peers`, "
                                                 "`limit_notes: true` (default) or false, `leaving`: a list of workers, and "
                                                 "`database_before`: new, direct or pooled.")
        roles = cluster_plan.load_roles(ROLES_DIR)
        data = self._inventory(task_vars, roles)
        data["database_before"] = args.get("database_before")
        if args.get("only") == "peers":
            return dict(result, changed=False, peers=cluster_plan.peers_to_address(data, roles))
        try:
            planned = cluster_plan.plan(cluster_plan.without_workers(data, args["leaving"]) if args.get("leaving") else data,
                                        roles)
        except cluster_plan.PlanError as error:
            return dict(result, failed=True, changed=False, errors=error.errors,
                        msg=f"The inventory has {len(error.errors)} problem(s), nothing was changed:\n"
                            + "\n".join(f"- {text}" for text in error.errors))
        planned["specs"] = roles["specs"]
        if args.get("leaving"):
            planned["leaving"] = cluster_plan.leaving_admission(data, roles, args["leaving"])
        if planned["tls"]:
            planned["notes"] += self._ca_key_notes(task_vars)
        if args.get("limit_notes", True):
            for note in planned["notes"]:
                self._display.warning(note)
        return dict(result, changed=False, **planned)

    def _inventory(self, task_vars: dict, roles: dict) -> dict:
        """The planner's view of the inventory: groups, each member's address, the inputs the rules
        read, and for secrets only a digest (or None where unset, empty or an undefined reference)."""
        groups = {group: list(task_vars["groups"].get(group, [])) for group in cluster_plan.GROUPS}
        members = cluster_plan.unique(host for group in cluster_plan.GROUPS for host in groups[group])
        hostvars = task_vars["hostvars"]
        plain = (list(cluster_plan.CLUSTER_DEFAULTS) + list(cluster_plan.ROLE_INPUTS)
                 + [name for name, _unused, _unused in cluster_plan.DERIVED_INPUTS if name not in cluster_plan.SECRET_SOURCES]
                 + list(cluster_plan.PLANNED_INPUTS))
        secrets = cluster_plan.secret_names(roles)
        hosts = {}
        for host in members:
            host_vars = hostvars[host]
            facts = self._value(host_vars, "ansible_facts") or {}
            default_ipv4 = facts.get("default_ipv4") or {}
            hosts[host] = {
                "address": default_ipv4.get("address"),
                # compared within the redis and postgresql groups (cluster_plan.check_data_releases)
                "release": " ".join(str(facts[name]) for name in ("distribution", "distribution_major_version") if facts.get(name)),
                "vars": {name: self._value(host_vars, name) for name in plain if name in host_vars},
                "secrets": {name: self._secret(host_vars, name) for name in secrets if name in host_vars},
            }
            if "airflow_dag_bundles" in host_vars:
                # compared between hosts (cluster_plan.check_dag_bundles): credentials as digests
                try:
                    bundles = dag_bundles.without_secrets(host_vars["airflow_dag_bundles"])
                except Exception:  # an undefined (vault) variable in it: the role's preflight names it
                    bundles = None
                hosts[host]["vars"]["airflow_dag_bundles"] = bundles
        return {"groups": groups, "hosts": hosts,
                "play_hosts": list(task_vars.get("ansible_play_hosts_all") or members)}

    def _ca_key_notes(self, task_vars: dict) -> list[str]:
        """Where the CA key of site_tls goes on the controller (playbooks/vars/site.yml: site_tls_dir,
        default tls/ beside the inventory), unless the inventory brings its CA: whether git would
        take it along (cluster_plan.ca_key_notes decides)."""
        first = task_vars["hostvars"][(task_vars.get("ansible_play_hosts_all") or [task_vars["inventory_hostname"]])[0]]
        if "site_tls_ca_cert" in first and self._value(first, "site_tls_ca_cert"):
            return []
        tls_dir = first["site_tls_dir"] if "site_tls_dir" in first else f"{first['inventory_dir']}/tls"
        key = Path(str(tls_dir)).expanduser() / "ca.key"
        work_tree, ignored = self._git_state(key)
        return cluster_plan.ca_key_notes(str(key), self._secret(first, "site_tls_ca_passphrase") is not None, work_tree, ignored)

    @staticmethod
    def _git_state(path: Path) -> tuple[str | None, bool]:
        """(the git work tree holding path or None, whether git ignores path); no git: (None, False)."""
        directory = path.parent
        while not directory.is_dir() and directory != directory.parent:
            directory = directory.parent
        try:
            top = subprocess.run(["git", "-C", str(directory), "rev-parse", "--show-toplevel"],
                                 capture_output=True, text=True, check=False, timeout=30)
            if top.returncode != 0:
                return None, False
            ignored = subprocess.run(["git", "-C", str(directory), "check-ignore", "-q", str(path)],
                                     capture_output=True, check=False, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None, False
        return top.stdout.strip(), ignored.returncode == 0

    @staticmethod
    def _value(host_vars, name):
        try:
            return host_vars[name]
        except AnsibleError as error:
            raise AnsibleError(f"cluster_plan could not read {name}: {error}") from None

    @staticmethod
    def _secret(host_vars, name):
        """A digest of the secret's value, or None if it is empty or refers to an undefined variable;
        the value itself never leaves this function."""
        try:
            value = host_vars[name]
        except Exception:  # an undefined (vault) variable: reported as not set, without its text
            return None
        if value is None or str(value) == "":
            return None
        return digest(value)
