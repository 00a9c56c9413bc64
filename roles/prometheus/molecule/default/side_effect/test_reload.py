"""A changed target list: run by the side_effect step (it re-runs the role twice and puts the
target list back)."""

from airflow_ops_testlib import container_ip, http, run_role, wait_for

testinfra_hosts = ["ansible://pm-monitor"]

PASSWORD = "molecule-Scrape-Secret-1"
SECRETS = "/etc/prometheus/airflow-ops-secrets"
# As molecule.yml gives them: the runs below keep them (the verifier checks their alert).
CERTIFICATES = [{"host": "pm-monitor", "service": "redis", "not_after": 4000000000},
                {"host": "pm-old", "service": "api_server", "not_after": 1609459200}]


def active_targets():
    """(job, health) of every target Prometheus scrapes now, after its last reload."""
    status, body = http("GET", f"http://{container_ip('pm-monitor')}:9090/api/v1/targets?state=active",
                        basic=("ops", "molecule-Prometheus-Secret-1"))
    assert status == 200, body
    return {(t["labels"]["job"], t["health"]) for t in body["data"]["activeTargets"]}


def test_a_changed_target_list_is_validated_and_reloaded(host):
    """A run that adds a job: promtool checks the new file (with a password file and a rule file),
    Prometheus reloads it without a restart; a run without it takes it away again."""
    address = container_ip("pm-monitor")
    targets = [{"job": "redis", "targets": [f"{address}:9121"]},
               {"job": "postgresql", "targets": [f"{address}:9187"], "username": "prometheus", "password": "molecule-Exporter-Secret-1"},
               {"job": "with-login", "targets": [f"{address}:9121"], "username": "ops", "password": PASSWORD}]
    started = host.check_output("systemctl show prometheus -p ExecMainStartTimestampMonotonic")
    extra = {"job": "extra", "targets": [f"{address}:9121"], "username": "extra", "password": "molecule-Extra-Secret-2"}
    for wanted, present in ((targets + [extra], True), (targets, False)):
        inputs = {"prometheus_scrape_interval": "5s", "prometheus_targets": wanted, "prometheus_certificates": CERTIFICATES,
                  "prometheus_basic_auth": "ops:molecule-Prometheus-Secret-1,audit:molecule-Audit-Secret-2"}
        result = run_role("prometheus", "pm-monitor", inputs)
        assert result.returncode == 0, result.output[-3000:]
        assert "molecule-Extra-Secret-2" not in result.output
        wait_for(f"job extra {'scraped' if present else 'gone'}", lambda: (("extra", "up") in active_targets()) == present)
    assert host.file(f"{SECRETS}/extra.password").exists is False
    assert host.check_output("systemctl show prometheus -p ExecMainStartTimestampMonotonic") == started
