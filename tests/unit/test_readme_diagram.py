"""The architecture picture in README.md stays in step with the site playbook: every group it
assigns roles to, and every service port at its default, appears in the Mermaid diagram."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def diagram() -> str:
    found = re.findall(r"```mermaid\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(found) == 1, "README.md should hold one Mermaid diagram"
    return found[0]


def site_groups() -> set[str]:
    plays = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    return {group for play in plays for group in re.split(r"[:,]", play["hosts"])}


def default(role: str, entry: str, option: str):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"][entry]["options"][option]["default"]


def test_every_group_of_the_site_playbook_is_drawn():
    drawn = set(re.findall(r'subgraph \w+\["group (\w+)[" ]', diagram()))
    assert drawn == site_groups()


def test_every_service_port_is_drawn_at_its_default():
    ports = [default("redis", "main", "redis_port"), default("postgresql", "main", "postgresql_port"),
             default("postgresql", "main", "postgresql_pgbouncer_port"),
             default("_airflow_common", "host", "airflow_api_server_port"),
             default("_airflow_common", "host", "airflow_worker_log_server_port"),
             default("_airflow_common", "host", "airflow_triggerer_log_server_port"), default("flower", "main", "flower_port"),
             default("redis", "main", "redis_exporter_port"), default("postgresql", "main", "postgresql_exporter_port"),
             default("prometheus", "main", "prometheus_port"), default("prometheus", "main", "prometheus_statsd_port")]
    text = diagram()
    assert [port for port in ports if f":{port}" not in text] == []
