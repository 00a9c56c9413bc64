"""The broker's users in the whole cluster (plugins/plugin_utils/redis_acl.py). Runs last (after the
other files, and so after every side effect: the scale-out, the drills, the renewal run (under
make test-upgrade the upgrade and its rollback) and the decommission): no client of the broker was
refused a command in all of it; task code on a worker, with the broker login its airflow.cfg holds,
cannot reconfigure, wipe, watch or stop the broker, and the DAG still runs."""

import json
import shlex

from airflow_ops_testlib import AirflowApi, container_ip, molecule_host, redis_acl, side_effect, use_cluster_ca

testinfra_hosts = ["ansible://cl-broker"]

ADMIN_PASSWORD = "molecule-broker-Secret-1"  # redis_password (molecule.yml)
CA = use_cluster_ca("cl-api")
DAG = "airflow_ops_fanout"
FORBIDDEN = [
    ["CONFIG", "GET", "*"], ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"], ["MODULE", "LIST"],
    ["MODULE", "LOAD", "/tmp/x.so"], ["FLUSHALL"], ["FLUSHDB"], ["REPLICAOF", "203.0.113.1", "6379"],
    ["DEBUG", "SLEEP", "0"], ["SHUTDOWN", "NOSAVE"], ["ACL", "LIST"], ["ACL", "SETUSER", "worker", "+@all"],
    ["MONITOR"], ["CLIENT", "KILL", "TYPE", "normal"], ["KEYS", "*"], ["SCAN", "0"], ["SAVE"],
]
# As task code would: the broker login of airflow.cfg, through the Sentinels to the primary, over TLS,
# as the Celery app connects (kombu with the app's settings); then the same login on each Sentinel.
AS_TASK_CODE = """
import json, sys
from urllib.parse import urlsplit
import kombu, redis
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG as c
options = dict(c["broker_transport_options"])
connection = kombu.Connection(c["broker_url"], transport_options=options, ssl=c.get("broker_use_ssl") or False)
connection.ensure_connection(max_retries=3)
client = connection.default_channel.client
answers = {"whoami_ping": str(client.ping())}
for command in json.loads(sys.argv[1]):
    try:
        answers[" ".join(command)] = "allowed: " + repr(client.execute_command(*command))[:80]
    except redis.exceptions.RedisError as error:
        answers[" ".join(command)] = f"{type(error).__name__}: {error}"
for url in c["broker_url"].split(";"):
    parts = urlsplit(url)
    sentinel = redis.Redis(parts.hostname, parts.port, **options["sentinel_kwargs"])
    answers[f"lookup on {parts.hostname}"] = str(bool(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "airflow")))
    for command in json.loads(sys.argv[2]):
        try:
            answers[f"{' '.join(command)} on {parts.hostname}"] = "allowed: " + repr(sentinel.execute_command(*command))[:80]
        except redis.exceptions.RedisError as error:
            answers[f"{' '.join(command)} on {parts.hostname}"] = f"{type(error).__name__}: {error}"
print(json.dumps(answers))
"""
# What the broker login must not do to a Sentinel: start a failover, change, move or drop what it watches, read its settings.
SENTINEL_FORBIDDEN = [
    ["SENTINEL", "FAILOVER", "airflow"], ["SENTINEL", "SET", "airflow", "quorum", "1"], ["SENTINEL", "REMOVE", "airflow"],
    ["SENTINEL", "MONITOR", "evil", "203.0.113.1", "6379", "1"], ["SENTINEL", "RESET", "*"], ["SENTINEL", "CONFIG", "GET", "*"],
    ["SENTINEL", "DEBUG"], ["ACL", "LIST"], ["SHUTDOWN"],
]
BROKER_HOSTS = ["cl-broker", "cl-scheduler", "cl-worker1"]  # Redis Sentinel's group (molecule.yml)


def acl_log(host):
    """ACL LOG of every broker host's Redis, as the admin user, on the host: [(username, reason, object)]."""
    entries = []
    for broker in BROKER_HOSTS:
        cli = ("redis-cli --no-auth-warning --tls --cacert /etc/redis/tls/ca.crt --user admin "
               f"-h {container_ip(broker)} --json ACL LOG 128")
        out = molecule_host(broker).run(f"REDISCLI_AUTH={shlex.quote(ADMIN_PASSWORD)} {cli}")
        assert out.rc == 0, out.stderr
        entries += json.loads(out.stdout or "[]")
    return [(entry["username"], entry["reason"], entry["object"]) for entry in entries]


def test_no_broker_client_was_refused_a_command_in_the_whole_scenario(host):
    """The schedulers, workers, Flower, the exporter and the drain/inspect calls of every side
    effect ran all they needed as their users: ACL LOG is empty now, and was before each drill that
    restarted Redis (which empties it; drills.py read it then)."""
    drills = json.loads(side_effect("drills.json").read_text())
    before = {name: drills.get(name, {}).get("acl_log_before") for name in ("redis_host_kill", "redis_kill9", "all_hosts_restart")}
    assert before == {"redis_host_kill": [], "redis_kill9": [], "all_hosts_restart": []}
    assert acl_log(host) == []


def test_task_code_on_a_worker_cannot_administer_the_broker_and_the_dag_still_runs(host):
    worker = molecule_host("cl-worker1")
    code = shlex.quote(AS_TASK_CODE)
    out = worker.run(f"runuser -u airflow -- env AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
                     f"/opt/airflow/venv/bin/python -c {code} {shlex.quote(json.dumps(FORBIDDEN))} "
                     f"{shlex.quote(json.dumps(SENTINEL_FORBIDDEN))}")
    assert out.rc == 0, out.stderr[-2000:]
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    assert answers.pop("whoami_ping") == "True"
    # each Sentinel tells it where the primary is, and nothing more
    assert [answers.pop(f"lookup on {container_ip(b)}") for b in BROKER_HOSTS] == ["True"] * 3, answers
    # redis-py raises NoPermissionError for NOPERM (and drops the prefix from the message);
    # DEBUG and MODULE are refused by the server's own settings before the ACL is asked.
    allowed = {command: answer for command, answer in answers.items()
               if not (answer.startswith("NoPermissionError:") or "NOPERM" in answer
                       or "command not allowed" in answer)}
    assert allowed == {}
    # Each refusal is logged, as the worker user; nothing else is.
    logged = acl_log(host)
    assert logged and {user for user, _reason, _object in logged} == {"worker"}, logged
    for broker in BROKER_HOSTS:
        assert molecule_host(broker).run(f"REDISCLI_AUTH={shlex.quote(ADMIN_PASSWORD)} redis-cli --no-auth-warning --tls "
                                         f"--cacert /etc/redis/tls/ca.crt --user admin -h {container_ip(broker)} ACL LOG RESET").rc == 0
    run = AirflowApi(f"https://{container_ip('cl-api')}:8080", "admin", "molecule-Admin-Secret-1").run_dag(DAG)
    assert run["state"] == "success", run


def test_each_airflow_host_holds_only_its_own_broker_login():
    """airflow.cfg names the user of the host's components; no Airflow host holds redis_password."""
    for name, user in (("cl-worker1", "worker"), ("cl-scheduler", "scheduler"), ("cl-api", None)):
        config = molecule_host(name).run("cat /etc/airflow/airflow.cfg").stdout
        assert ADMIN_PASSWORD not in config, name
        if user:
            assert f"://{user}:{redis_acl.user_password(ADMIN_PASSWORD, user)}@" in config, name
        else:
            assert "broker_url" not in config, name
