"""The broker as Redis Sentinel's group of three (molecule.yml's `redis`: cl-broker, cl-scheduler, cl-worker1),
as the drills left it (test_faults.py judges the failovers themselves): every Sentinel names one primary, which
the two others replicate with AOF on; each Sentinel runs under the role's hardened unit, not the package's; what
it keeps is its user's alone; the Airflow hosts find the primary through all three."""

import shlex

import pytest

from airflow_ops_testlib import container_ip, molecule_host, unit_properties

testinfra_hosts = ["ansible://cl-broker"]

ADMIN_PASSWORD = "molecule-broker-Secret-1"  # redis_password (molecule.yml)
BROKER_HOSTS = ["cl-broker", "cl-scheduler", "cl-worker1"]


def redis_cli(host, command, port=6379):
    out = molecule_host(host).run(f"REDISCLI_AUTH={shlex.quote(ADMIN_PASSWORD)} redis-cli --no-auth-warning --tls --cacert "
                                  f"/etc/redis/tls/ca.crt --user admin -h {container_ip(host)} -p {port} {command}")
    assert out.rc == 0, out.stderr
    return out.stdout


def replication(host):
    return dict(line.strip().split(":", 1) for line in redis_cli(host, "INFO replication").splitlines() if ":" in line)


def test_every_sentinel_names_one_primary_which_the_others_replicate():
    named = {host: redis_cli(host, "SENTINEL GET-MASTER-ADDR-BY-NAME airflow", 26379).split() for host in BROKER_HOSTS}
    assert len({tuple(answer) for answer in named.values()}) == 1, named
    primary_address = named["cl-broker"][0]
    primary = {container_ip(host): host for host in BROKER_HOSTS}[primary_address]
    assert replication(primary)["role"] == "master" and replication(primary)["connected_slaves"] == "2"
    for host in BROKER_HOSTS:
        if host != primary:
            info = replication(host)
            assert (info["role"], info["master_host"], info["master_link_status"]) == ("slave", primary_address, "up"), host
        # each Sentinel knows the other two and both replicas
        master = redis_cli(host, "SENTINEL MASTER airflow", 26379).split()
        fields = dict(zip(master[::2], master[1::2]))
        assert (fields["num-other-sentinels"], fields["num-slaves"], fields["quorum"]) == ("2", "2", "2"), (host, fields)
        assert fields["down-after-milliseconds"] == "5000", fields
        assert redis_cli(host, "CONFIG GET appendonly").split()[-1] == "yes", host


@pytest.mark.parametrize("name", BROKER_HOSTS)
def test_sentinel_runs_under_the_roles_hardened_unit_and_the_packages_is_off(name):
    host = molecule_host(name)
    shown = unit_properties(host, "airflow-ops-sentinel", "User", "ActiveState", "Restart", "ProtectSystem", "NoNewPrivileges",
                            "UnitFileState")
    assert shown == {"User": "redis", "ActiveState": "active", "Restart": "always", "ProtectSystem": "strict",
                     "NoNewPrivileges": "yes", "UnitFileState": "enabled"}, shown
    package = unit_properties(host, "redis-sentinel", "ActiveState", "UnitFileState")
    assert package == {"ActiveState": "inactive", "UnitFileState": "disabled"}, package
    # TLS only, on the host's address and loopback
    assert sorted(host.check_output("ss -Htln 'sport = :26379' | awk '{print $4}'").split()) == sorted(
        [f"{container_ip(name)}:26379", "127.0.0.1:26379"])


def test_what_sentinel_and_replication_keep_is_not_for_task_code():
    """On cl-worker1, a worker and broker host: the airflow user (task code) reads neither Sentinel's state (which
    holds the replication login) nor the role's settings (Sentinel's own login), nor Redis's."""
    worker = molecule_host("cl-worker1")
    for path in ("/var/lib/airflow-ops-sentinel/sentinel.conf", "/etc/redis/conf.d/airflow-ops-sentinel.conf",
                 "/etc/redis/conf.d/airflow-ops.conf", "/etc/redis/sentinel-users.acl", "/etc/redis/redis.conf"):
        assert worker.run(f"runuser -u airflow -- cat {path}").rc != 0, path
