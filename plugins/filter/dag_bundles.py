# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.dag_bundle_plan: what one Airflow host gets of airflow_dag_bundles, as
plugins/plugin_utils/dag_bundles.py decides it. Its documentation is in dag_bundle_plan.yml beside
this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.airflow_ops.celery.plugins.plugin_utils import dag_bundles
except ImportError:  # the unit tests import plugin_utils beside this file
    import dag_bundles


def dag_bundle_plan(bundles, components, paths, default_refresh=30):
    problems = dag_bundles.errors(bundles, "this host")
    if problems:
        raise AnsibleFilterError("dag_bundle_plan: " + " ".join(problems))
    return dag_bundles.plan(list(bundles), list(components or []), dict(paths), int(default_refresh))


class FilterModule:
    def filters(self):
        return {"dag_bundle_plan": dag_bundle_plan}
