"""Prometheus on the monitoring host: the exporters' figures arrive, the rules are loaded, StatsD
(Airflow's metrics) arrives through the receiver, Prometheus and the PostgreSQL exporter answer only
with a login, and the scrape passwords stay where only prometheus reads them. A changed target list is applied in the side_effect step (../side_effect/):
this verifier only observes (its bad inputs change nothing)."""

import socket
import time
import urllib.parse

import pytest

from airflow_ops_testlib import assert_case_refused, container_ip, http, listening, run_role_cases, unit_properties, wait_for

testinfra_hosts = ["ansible://pm-monitor"]

PASSWORD = "molecule-Scrape-Secret-1"
SECRETS = "/etc/prometheus/airflow-ops-secrets"
# prometheus_basic_auth's second login, and the PostgreSQL exporter's (molecule.yml).
LOGINS = "ops:molecule-Prometheus-Secret-1,audit:molecule-Audit-Secret-2"
LOGIN = ("audit", "molecule-Audit-Secret-2")
EXPORTER_LOGIN = ("prometheus", "molecule-Exporter-Secret-1")


def base():
    return f"http://{container_ip('pm-monitor')}:9090"


def get(path):
    return http("GET", base() + path, basic=LOGIN)


def query(expr):
    status, body = get(f"/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200, body
    return body["data"]["result"]


def recent(expr, value):
    """The series of expr whose sample is value (any, if None) and at most 30 s old, once there is one."""
    def found():
        series = [s for s in query(expr) if value in (None, s["value"][1]) and time.time() - float(s["value"][0]) < 30]
        return series or None
    return wait_for(f"{expr} = {value}", found, timeout=120, interval=3)


@pytest.mark.parametrize(("job", "metric"), [("redis", "redis_up"), ("postgresql", "pg_up")])
def test_prometheus_reads_each_exporter(job, metric):
    recent(f'up{{job="{job}"}}', "1")
    recent(f'{metric}{{job="{job}"}}', "1")


def test_a_target_with_basic_auth_is_scraped():
    """Prometheus reads the job's password file (a scrape fails when it cannot)."""
    recent('up{job="with-login"}', "1")


@pytest.mark.parametrize("path", ["/api/v1/query?query=up", "/-/ready", "/metrics", "/graph"])
def test_prometheus_answers_only_with_a_login(path):
    assert http("GET", base() + path)[0] == 401
    assert http("GET", base() + path, basic=("audit", "molecule-Audit-Secret-3"))[0] == 401
    assert get(path)[0] == 200


def test_the_postgresql_exporter_answers_only_with_its_login():
    """Prometheus scrapes it with EXPORTER_LOGIN (pg_up above); without a login, or with Prometheus's own, 401."""
    url = f"http://{container_ip('pm-monitor')}:9187/metrics"
    assert http("GET", url)[0] == 401
    assert http("GET", url, basic=LOGIN)[0] == 401
    status, body = http("GET", url, basic=EXPORTER_LOGIN)
    assert status == 200 and "\npg_up 1\n" in body


@pytest.mark.parametrize(("path", "group", "plain"), [
    ("/etc/prometheus/airflow-ops-web.yml", "prometheus", ["molecule-Prometheus-Secret-1", "molecule-Audit-Secret-2"]),
    ("/etc/airflow-ops/postgres-exporter-web.yml", "prometheus", ["molecule-Exporter-Secret-1"]),
])
def test_the_web_configurations_hold_hashes_only_for_root_and_the_service(host, path, group, plain):
    config = host.file(path)
    assert (config.user, config.group, config.mode) == ("root", group, 0o640)
    content = config.content_string
    assert "basic_auth_users:" in content and "$2b$10$" in content
    assert [value for value in plain if value in content] == []
    assert host.run(f"sudo -u nobody cat {path}").rc != 0


def test_the_alert_rules_are_loaded():
    status, body = get("/api/v1/rules")
    assert status == 200
    rules = {rule["name"]: rule for group in body["data"]["groups"] for rule in group["rules"]}
    assert set(rules) == {"AirflowOpsTargetDown", "AirflowOpsBrokerOrDatabaseDown", "AirflowOpsCeleryWorkerOffline",
                          "AirflowOpsSchedulerHeartbeatMissing", "AirflowOpsDagBundleNotFetched", "AirflowOpsCertificateExpiresSoon",
                          "airflow_ops_tls_certificate_expiry_timestamp_seconds"}
    assert all(rule["health"] == "ok" for rule in rules.values()), rules
    # Everything is up: nothing fires but the alert of the certificate that ended (the next test).
    assert [name for name, rule in rules.items() if rule.get("state") == "firing" and name != "AirflowOpsCertificateExpiresSoon"] == []


def test_a_certificate_that_ends_within_the_warning_days_fires_its_alert_and_no_other():
    """prometheus_certificates (molecule.yml): the one that ended in 2021 fires, the one that ends in 2096 does not."""
    ends = {s["metric"]["service"]: s["value"][1] for s in recent("airflow_ops_tls_certificate_expiry_timestamp_seconds", None)}
    assert ends == {"redis": "4000000000", "api_server": "1609459200"}

    def firing():
        status, body = get("/api/v1/alerts")
        assert status == 200
        alerts = [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == "AirflowOpsCertificateExpiresSoon"]
        return alerts if alerts and all(a["state"] == "firing" for a in alerts) else None
    alerts = wait_for("the certificate alert to fire", firing, timeout=120, interval=3)
    assert [(a["labels"]["host"], a["labels"]["service"]) for a in alerts] == [("pm-old", "api_server")]
    assert alerts[0]["annotations"]["summary"].startswith("The api_server certificate of pm-old ends in "), alerts[0]


def test_airflow_statsd_arrives_in_prometheus():
    """What Airflow sends (StatsD over UDP to the monitoring host) is in Prometheus as job airflow."""
    lines = b"airflow.scheduler_heartbeat:1|c\nairflow.executor.running_tasks:3|g\nairflow.dagrun.duration.success.demo:1500|ms"

    def arrived():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(lines, (container_ip("pm-monitor"), 8125))
        found = query('collectd_statsd_derive_total{job="airflow",statsd="airflow.scheduler_heartbeat"}')
        return found or None

    assert float(wait_for("the heartbeat counter", arrived, timeout=120, interval=5)[0]["value"][1]) >= 1
    recent('collectd_statsd_gauge{job="airflow",statsd="airflow.executor.running_tasks"}', "3")
    assert query('collectd_statsd_latency{job="airflow",statsd="airflow.dagrun.duration.success.demo-average"}')


def test_statsd_receiver_runs_unprivileged(host):
    shown = unit_properties(host, "airflow-ops-statsd", "User", "NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet")
    assert shown == {"User": "prometheus", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "CapabilityBoundingSet": ""}
    # Its Prometheus page is on loopback only; StatsD on the cluster address.
    assert listening(host, 9103) == ["127.0.0.1:9103"]
    assert listening(host, 8125, udp=True) == [f"{container_ip('pm-monitor')}:8125"]


def test_scrape_password_is_for_prometheus_only(host):
    password = host.file(f"{SECRETS}/with-login.password")
    assert (password.user, password.group, password.mode) == ("root", "prometheus", 0o640)
    assert host.file(SECRETS).mode == 0o750
    assert host.run(f"sudo -u nobody cat {SECRETS}/with-login.password").rc != 0
    assert PASSWORD not in host.file("/etc/prometheus/airflow-ops.yml").content_string
    assert host.file(f"{SECRETS}/redis.password").exists is False
    # Prometheus scrapes itself with its first login, and the PostgreSQL exporter with the exporter's.
    assert host.file(f"{SECRETS}/prometheus.password").content_string == "molecule-Prometheus-Secret-1"
    assert host.file(f"{SECRETS}/postgresql.password").content_string == "molecule-Exporter-Secret-1"


def test_prometheus_runs_unprivileged_on_the_cluster_address(host):
    service = host.service("prometheus")
    assert service.is_running and service.is_enabled
    shown = unit_properties(host, "prometheus", "User", "NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet")
    assert shown["User"] == "prometheus"
    assert shown["NoNewPrivileges"] == "yes"
    assert shown["ProtectSystem"] == "full"
    assert shown["CapabilityBoundingSet"] == ""
    assert listening(host, 9090) == [f"{container_ip('pm-monitor')}:9090"]


# Bad input, every case a host of its own in one run of the role (run_role_cases).
CASES = {
    "duplicate-job": ({"prometheus_targets": [{"job": "a", "targets": ["x:1"]}, {"job": "a", "targets": ["y:1"]}]},
                      "every job needs a unique name"),
    "password-without-user": ({"prometheus_targets": [{"job": "a", "targets": ["x:1"], "password": "p-Secret-Value-1"}]},
                              "username and password come together"),
    "bad-retention": ({"prometheus_retention_time": "forever"}, "prometheus_retention_time=forever"),
    "short-login": ({"prometheus_basic_auth": "ops:p-Secret-1"}, 'prometheus_basic_auth must be "user:password"'),
}


@pytest.fixture(scope="module")
def refused(host):
    """The run of every case, and the configuration's file before and after it."""
    before = host.check_output("sha256sum /etc/prometheus/airflow-ops.yml")
    run = run_role_cases("prometheus", "pm-monitor",
                         {case: dict({"prometheus_basic_auth": LOGINS}, **variables) for case, (variables, _unused) in CASES.items()})
    return run, before, host.check_output("sha256sum /etc/prometheus/airflow-ops.yml")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_before_any_change(refused, case):
    run, before, after = refused
    variables, expected = CASES[case]
    assert_case_refused(run, "pm-monitor", case, dict({"prometheus_basic_auth": LOGINS}, **variables), expected)
    assert "p-Secret-Value-1" not in run.output
    assert after == before
