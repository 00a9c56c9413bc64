"""The network policy as hosts meet it: fw-server listens on 8080, 8081 and 8082; its rules admit
fw-client to 8080 and nobody to 8081, and leave 8082 alone. A refused connection gets a TCP reset
(an immediate "Connection refused", never a timeout), loopback is never filtered, and bad rules
stop the role before anything changes."""

import pytest

from airflow_ops_testlib import assert_case_refused, container_ip, molecule_host, run_role_cases

testinfra_hosts = ["ansible://fw-server"]


def connect(source: str, target_address: str, port: int):
    """Open a TCP connection from a container; (opened, stderr)."""
    out = molecule_host(source).run(f"timeout 10 bash -c 'exec 3<>/dev/tcp/{target_address}/{port}'")
    return out.rc == 0, out.stderr


@pytest.mark.parametrize(("source", "port", "opens"), [
    ("fw-client", 8080, True),    # admitted
    ("fw-other", 8080, False),    # not among the sources
    ("fw-client", 8081, False),   # no source at all
    ("fw-other", 8081, False),
    ("fw-client", 8082, True),    # not listed: left to other filters
    ("fw-other", 8082, True),
])
def test_each_port_opens_only_to_its_sources(source, port, opens):
    opened, stderr = connect(source, container_ip("fw-server"), port)
    assert opened == opens, (source, port, stderr)
    if not opens:
        assert "Connection refused" in stderr, stderr  # a reset, not a silent drop


def test_loopback_is_never_filtered(host):
    assert host.run("timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8081'").rc == 0


def test_the_table_holds_one_rule_per_source_and_a_reject_per_port(host):
    table = host.check_output("nft list table inet airflow_ops")
    client = container_ip("fw-client")
    assert f"tcp dport 8080 ip saddr {client} accept" in table, table
    assert "tcp dport 8080 ip6 saddr 2001:db8::/32 accept" in table, table
    assert f"udp dport 5353 ip saddr {client} accept" in table, table
    assert table.count("reject") == 3, table
    assert "8082" not in table
    assert container_ip("fw-other") not in table


def test_the_rules_load_at_boot(host):
    unit = host.service("airflow-ops-firewall")
    assert unit.is_enabled
    assert host.run("systemctl is-active airflow-ops-firewall").stdout.strip() == "active"


# Bad rules, every case a host of its own in one run of the role (run_role_cases).
CASES = {
    "trailing-newline": ([{"name": "x", "port": 8080, "sources": ["10.0.0.0/8\n"]}], "(not valid: '10.0.0.0/8"),
    "not-an-address": ([{"name": "x", "port": 8080, "sources": ["office"]}], "(not valid: office)"),
    "port-out-of-range": ([{"name": "x", "port": 70000, "sources": []}], "every port must be 1-65535 (got 70000)"),
    "ssh-port": ([{"name": "sshd", "port": 22, "sources": []}], "would filter port 22, the SSH port this run connects through (sshd)"),
}


@pytest.fixture(scope="module")
def refused(host):
    """The run of every case, and the loaded rules' file before and after it."""
    before = host.check_output("sha256sum /etc/airflow-ops/firewall.nft")
    run = run_role_cases("firewall", "fw-server", {case: {"firewall_rules": rules} for case, (rules, _unused) in CASES.items()})
    return run, before, host.check_output("sha256sum /etc/airflow-ops/firewall.nft")


@pytest.mark.parametrize("case", CASES)
def test_bad_rules_fail_before_any_change(refused, case):
    run, before, after = refused
    rules, expected = CASES[case]
    assert_case_refused(run, "fw-server", case, {"firewall_rules": rules}, expected)
    assert after == before
