"""Metrics (cl-db is also the `monitoring` host): after the side effect's DAG runs, Prometheus holds
recent samples from each of the four sources: the Redis and PostgreSQL exporters, Flower (Celery,
scraped over TLS with its login) and Airflow itself (StatsD through the receiver). The exporters
answer the monitoring host only; Prometheus (HTTPS, its login) and the PostgreSQL exporter (HTTPS,
Prometheus's login) answer no one without a login."""

import shlex
import time
import urllib.parse

import pytest
from cryptography import x509

from airflow_ops_testlib import container_ip, http, molecule_host, use_cluster_ca, wait_for

testinfra_hosts = ["ansible://cl-db"]

use_cluster_ca("cl-db")
PROMETHEUS = f"https://{container_ip('cl-db')}:9090"
LOGIN = ("ops", "molecule-Prometheus-Secret-1")


def query(expr):
    status, body = http("GET", f"{PROMETHEUS}/api/v1/query?query={urllib.parse.quote(expr)}", basic=LOGIN)
    assert status == 200, body
    return body["data"]["result"]


def recent(expr):
    """The series of expr with a sample at most 60 s old, once there is one."""
    def found():
        series = [s for s in query(expr) if time.time() - float(s["value"][0]) < 60]
        return series or None
    return wait_for(expr, found, timeout=180, interval=5)


@pytest.mark.parametrize("expr", [
    'redis_up{job="redis"} == 1',
    'pg_up{job="postgresql"} == 1',
    # Celery, as Flower counts it: tasks the workers finished (the side effect ran dozens).
    'flower_events_total{job="flower",type="task-succeeded"} > 0',
    'flower_worker_online{job="flower"} == 1',
    # Airflow's own: the scheduler's heartbeat counter (StatsD, through the receiver on cl-db).
    'rate(collectd_statsd_derive_total{job="airflow",statsd="airflow.scheduler_heartbeat"}[1m]) > 0',
    'collectd_statsd_gauge{job="airflow",statsd=~"airflow.pool.open_slots.default_pool"}',
    # The Git bundle's fetch watch on cl-scheduler (airflow-ops-bundle-age.timer): fetched recently.
    'collectd_statsd_gauge{job="airflow",statsd="airflow.dag_bundle.git-dags.missed_refreshes"} < 3',
])
def test_prometheus_has_recent_samples_from_every_source(expr):
    assert recent(expr)


def test_every_target_is_up():
    targets = {s["metric"]["job"]: s["value"][1] for s in query("up")}
    assert targets.get("postgresql") == "1" and targets.get("airflow") == "1", targets
    # Redis Sentinel's group: the exporter of each of the three broker hosts
    brokers = query('up{job="redis"}')
    assert len(brokers) == 3 and all(s["value"][1] == "1" for s in brokers), brokers
    flower = query('up{job="flower"}')
    assert flower and all(s["value"][1] == "1" for s in flower), flower


def test_no_alert_fires_on_a_healthy_cluster():
    status, body = http("GET", f"{PROMETHEUS}/api/v1/alerts", basic=LOGIN)
    assert status == 200
    assert [a for a in body["data"]["alerts"] if a["state"] == "firing"] == []


@pytest.mark.parametrize(("host", "port"), [("cl-broker", 9121), ("cl-db", 9187)])
def test_an_exporter_answers_the_monitoring_host_only(host, port):
    """From cl-db (monitoring) the exporter opens; from a worker it is refused (the firewall)."""
    url = f"http://{container_ip(host)}:{port}/metrics"
    monitor, worker = molecule_host("cl-db"), molecule_host("cl-worker1")
    probe = f"timeout 10 bash -c 'exec 3<>/dev/tcp/{container_ip(host)}/{port}'"
    assert monitor.run(probe).rc == 0, url
    out = worker.run(probe)
    assert out.rc != 0 and "Connection refused" in out.stderr, url


# The HTTP status of a GET without a login, from a cluster host, verified against the cluster CA.
STATUS_PROBE = """
import ssl, sys, urllib.error, urllib.request
context = ssl.create_default_context(cafile="/etc/airflow-ops/tls/ca.crt")
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=20, context=context).status)
except urllib.error.HTTPError as err:
    print(err.code)
"""


def test_prometheus_and_the_postgresql_exporter_answer_no_one_without_a_login():
    """Over HTTPS (the CA verifies them above): Prometheus refuses the controller (an admin network) without
    its login; the exporter refuses the monitoring host without Prometheus's scrape login."""
    assert http("GET", f"{PROMETHEUS}/api/v1/query?query=up")[0] == 401
    assert http("GET", f"{PROMETHEUS}/api/v1/query?query=up", basic=("ops", "molecule-Prometheus-Secret-2"))[0] == 401
    answer = molecule_host("cl-db").check_output(f"python3 -c {shlex.quote(STATUS_PROBE)} https://{container_ip('cl-db')}:9187/metrics")
    assert answer == "401", answer


def test_prometheus_knows_when_each_certificate_ends_as_the_last_run_left_it():
    """Every TLS server's certificate and the CA's, each with the end of the file it serves from now, after the
    renewal run renewed them (site_tls_days 400: a value from before the renewal would be a year off); none ends
    within 14 days, so AirflowOpsCertificateExpiresSoon stays quiet (test_no_alert_fires_on_a_healthy_cluster)."""
    watched = {(s["metric"]["host"], s["metric"]["service"]): int(float(s["value"][1]))
               for s in recent("airflow_ops_tls_certificate_expiry_timestamp_seconds")}
    expected = {}
    for host, service in [("cl-broker", "redis"), ("cl-scheduler", "redis"), ("cl-worker1", "redis"),
                          ("cl-broker", "flower"), ("cl-db", "postgresql"), ("cl-api", "api_server"),
                          ("cl-scheduler", "api_server"), ("cl-db", "postgresql_exporter"), ("cl-db", "prometheus"),
                          ("cl-db", "ca")]:
        pem = molecule_host(host).check_output(f"cat /etc/airflow-ops/tls/{service}.crt")
        expected[(host, service)] = int(x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.timestamp())
    assert watched == expected
    assert min(end for (_host, service), end in watched.items() if service != "ca") > time.time() + 390 * 86400
