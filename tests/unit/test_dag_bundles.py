"""DAG bundles (plugins/plugin_utils/dag_bundles.py and the filter of plugins/filter/dag_bundles.py):
the checks of airflow_dag_bundles, what each host gets, and git_check.py's probe against a local
repository. Pure Python (and git)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import dag_bundles  # noqa: E402
import role_inputs  # noqa: E402


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = load("dag_bundle_filters", ROOT / "plugins" / "filter" / "dag_bundles.py")
git_check = load("git_check", ROOT / "roles" / "_airflow_common" / "files" / "git_check.py")

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-not-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
HOSTS = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey\n"
PATHS = {"dags_dir": "/opt/airflow/dags", "local_refresh": 20, "secrets_dir": "/etc/airflow/git"}
LOCAL = {"name": "dags-folder", "kind": "local"}


def git_bundle(**changes) -> dict:
    bundle = {"name": "team-dags", "repo_url": "git@git.example.com:data/dags.git", "tracking_ref": "main",
              "ssh_private_key": KEY, "known_hosts": HOSTS}
    bundle.update(changes)
    return {key: value for key, value in bundle.items() if value is not None}


def problems(bundles, dags_src="") -> str:
    return " ".join(dag_bundles.errors(bundles, "cl-worker1", dags_src))


# --- checks -------------------------------------------------------------------------------------

def test_the_default_and_a_local_plus_git_list_are_fine():
    assert dag_bundles.errors([LOCAL], "h", "/src/dags") == []
    assert dag_bundles.errors([LOCAL, git_bundle()], "h", "/src/dags") == []
    assert dag_bundles.errors([git_bundle(repo_url="ssh://git@git.example.com:2222/data/dags.git")], "h") == []
    assert dag_bundles.errors([git_bundle(repo_url="https://git.example.com/data/dags.git", ssh_private_key=None,
                                          known_hosts=None, https_username="deploy", https_token="t0ken")], "h") == []


@pytest.mark.parametrize("value", [{}, "dags", [None]])
def test_a_bundle_list_must_be_a_list_of_mappings(value):
    assert "airflow_dag_bundles on cl-worker1 must be a list of bundles" in problems(value)


def test_an_empty_list_is_the_dags_folder_alone():
    assert problems([], dags_src="/src/dags") == ""
    planned = dag_bundles.plan([], ["dag-processor", "worker"], PATHS)
    assert planned["config_list"] == [{"name": "dags-folder", "classpath": dag_bundles.LOCAL_CLASS,
                                       "kwargs": {"path": "/opt/airflow/dags", "refresh_interval": 20}}]
    assert planned["clones"] is False


def test_an_undefined_reference_is_named():
    assert problems(None) == "airflow_dag_bundles on cl-worker1 refers to a variable that is not defined (a vault variable of a key or token?)."


def test_every_message_names_the_host_the_variable_and_the_bundle():
    text = problems([git_bundle(repo_url="ftp://x")])
    assert text.startswith("airflow_dag_bundles on cl-worker1, bundle team-dags: repo_url=ftp://x must be")


@pytest.mark.parametrize("name", ["", "has space", "example_dags", "a/b", "x" * 64])
def test_bundle_names_are_checked(name):
    assert "name must be 1-63 letters" in problems([git_bundle(name=name)])


def test_names_are_unique():
    assert "bundle names must be unique; team-dags repeated" in problems([git_bundle(), git_bundle()])


def test_an_unknown_kind_or_field_is_refused_with_what_is_accepted():
    assert "kind=svn must be local or git" in problems([git_bundle(kind="svn")])
    text = problems([git_bundle(branch="main")])
    assert "a git bundle takes" in text and "tracking_ref" in text and "not branch" in text
    assert "not repo_url" in problems([dict(LOCAL, repo_url="git@x:y")])


@pytest.mark.parametrize("interval", [0, -5, "30", True, 2.5])
def test_refresh_interval_is_a_whole_number_of_seconds(interval):
    assert "refresh_interval=" in problems([git_bundle(refresh_interval=interval)])


@pytest.mark.parametrize("url", ["", "git.example.com:data/dags.git", "http://git.example.com/x.git", "file:///srv/x.git",
                                 "git@git.example.com", "/srv/git/dags.git"])
def test_repo_url_must_be_ssh_or_https(url):
    assert "must be an SSH URL" in problems([git_bundle(repo_url=url)])


def test_an_https_url_must_not_carry_a_token():
    text = problems([git_bundle(repo_url="https://deploy:secret-token@git.example.com/x.git", ssh_private_key=None,
                                known_hosts=None)])
    assert "must not carry a user or token" in text and "secret-token" not in text


@pytest.mark.parametrize("ref", ["", "-main", "a..b", "main.lock", "feature/", "with space"])
def test_tracking_ref_is_a_branch_tag_or_sha(ref):
    assert "tracking_ref=" in problems([git_bundle(tracking_ref=ref)])


@pytest.mark.parametrize("subdir", ["/abs", "../up", "a/../b", "a b"])
def test_subdir_stays_inside_the_repository(subdir):
    assert "subdir=" in problems([git_bundle(subdir=subdir)])


def test_an_ssh_url_needs_a_key_and_pinned_host_keys():
    text = problems([git_bundle(ssh_private_key=None, known_hosts=None)])
    assert "needs ssh_private_key" in text and "needs known_hosts" in text and "never trusted on first use" in text


def test_a_key_that_is_not_a_private_key_is_refused_without_showing_it():
    text = problems([git_bundle(ssh_private_key="ssh-ed25519 AAAA-public-key-by-mistake")])
    assert "must be an unencrypted private key" in text and "AAAA-public-key-by-mistake" not in text


def test_known_hosts_must_be_host_key_lines():
    assert "must hold known_hosts lines" in problems([git_bundle(known_hosts="git.example.com")])
    assert problems([git_bundle(known_hosts=["# scanned", HOSTS.strip(), "@cert-authority *.example.com ssh-ed25519 AAAA"])]) == ""


def test_credentials_must_match_the_transport():
    assert "are for an https:// repo_url" in problems([git_bundle(https_username="u", https_token="t")])
    assert "are for an SSH repo_url" in problems([git_bundle(repo_url="https://git.example.com/x.git")])
    assert "https_token needs https_username" in problems(
        [git_bundle(repo_url="https://git.example.com/x.git", ssh_private_key=None, known_hosts=None, https_token="t")])


def test_view_url_template_must_be_http():
    assert "view_url_template=ssh://x must be an http(s) URL" in problems([git_bundle(view_url_template="ssh://x")])


def test_copied_dags_need_a_local_bundle_of_the_dags_folder():
    text = problems([git_bundle()], dags_src="/src/dags")
    assert "lists no local bundle of the DAGs folder" in text and "airflow_dags_src=/src/dags" in text
    assert problems([dict(LOCAL, path="/srv/other"), git_bundle()], dags_src="/src/dags") != ""
    assert problems([git_bundle()]) == ""


def test_a_local_path_is_absolute():
    assert "must be an absolute path" in problems([dict(LOCAL, path="dags")])


def test_the_one_line_rule_lets_a_key_and_known_hosts_span_lines_but_nothing_else():
    assert role_inputs.line_break_errors({"airflow_dag_bundles": [git_bundle()]}, "h") == []
    text = " ".join(role_inputs.line_break_errors({"airflow_dag_bundles": [git_bundle(tracking_ref="main\nx")]}, "h"))
    assert "airflow_dag_bundles on h holds a carriage return" in text


# --- plan ----------------------------------------------------------------------------------------

def test_every_host_gets_the_same_config_list_without_credentials():
    bundles = [LOCAL, git_bundle(subdir="dags", refresh_interval=45, view_url_template="https://git.example.com/{version}")]
    lists = {tuple(components): dag_bundles.plan(bundles, components, PATHS)["config_list"]
             for components in (["api-server"], ["scheduler", "dag-processor", "triggerer"], ["worker"])}
    assert len({json.dumps(value) for value in lists.values()}) == 1
    config = lists[("worker",)]
    assert config[0] == {"name": "dags-folder", "classpath": dag_bundles.LOCAL_CLASS,
                         "kwargs": {"path": "/opt/airflow/dags", "refresh_interval": 20}}
    assert config[1] == {"name": "team-dags", "classpath": dag_bundles.GIT_CLASS, "kwargs": {
        "repo_url": "git@git.example.com:data/dags.git", "tracking_ref": "main", "git_conn_id": "airflow_ops_git_team-dags",
        "refresh_interval": 45, "subdir": "dags", "view_url_template": "https://git.example.com/{version}"}}
    assert "PRIVATE KEY" not in json.dumps(list(lists.values()))


def test_the_collection_default_refresh_applies_where_a_bundle_sets_none():
    assert dag_bundles.plan([git_bundle()], ["worker"], PATHS)["config_list"][0]["kwargs"]["refresh_interval"] == 30
    assert dag_bundles.plan([git_bundle()], ["worker"], PATHS, 12)["config_list"][0]["kwargs"]["refresh_interval"] == 12


@pytest.mark.parametrize("components", [["api-server"], ["scheduler", "triggerer"], ["flower"]])
def test_hosts_that_never_clone_get_no_credential(components):
    planned = dag_bundles.plan([LOCAL, git_bundle()], components, PATHS)
    assert (planned["clones"], planned["files"], planned["probes"], planned["connections_file"]) == (False, [], [], "")


@pytest.mark.parametrize("components", [["dag-processor"], ["worker"]])
def test_the_dag_processor_and_workers_get_the_key_pinned_host_keys_and_a_connection(components):
    planned = dag_bundles.plan([LOCAL, git_bundle()], components, PATHS)
    assert planned["clones"] is True
    files = {item["path"]: item for item in planned["files"]}
    assert files["/etc/airflow/git/team-dags.key"] == {"path": "/etc/airflow/git/team-dags.key", "content": KEY, "mode": "0640"}
    assert files["/etc/airflow/git/team-dags.known_hosts"]["content"] == HOSTS
    connections = json.loads(files["/etc/airflow/git/connections.json"]["content"])
    assert connections == {"airflow_ops_git_team-dags": {"conn_type": "git", "host": "git@git.example.com:data/dags.git", "extra": {
        "key_file": "/etc/airflow/git/team-dags.key", "known_hosts_file": "/etc/airflow/git/team-dags.known_hosts",
        "strict_host_key_checking": "yes"}}}
    assert planned["connections_file"] == "/etc/airflow/git/connections.json"
    assert planned["probes"] == [{"name": "team-dags", "url": "git@git.example.com:data/dags.git", "ref": "main",
                                  "ssh_private_key": KEY, "known_hosts": HOSTS}]


def test_an_https_token_goes_into_the_connection_login_and_password():
    bundle = git_bundle(repo_url="https://git.example.com/x.git", ssh_private_key=None, known_hosts=None,
                        https_username="deploy", https_token="t0ken")
    planned = dag_bundles.plan([bundle], ["worker"], PATHS)
    connection = json.loads(planned["files"][0]["content"])["airflow_ops_git_team-dags"]
    assert connection == {"conn_type": "git", "host": "https://git.example.com/x.git", "login": "deploy", "password": "t0ken"}
    assert [item["path"] for item in planned["files"]] == ["/etc/airflow/git/connections.json"]


def test_a_local_only_list_clones_nothing():
    planned = dag_bundles.plan([LOCAL], ["dag-processor", "worker"], PATHS)
    assert (planned["clones"], planned["files"], planned["probe_digest"]) == (False, [], "")


def test_the_probe_digest_follows_every_credential_and_nothing_else():
    first = dag_bundles.plan([git_bundle()], ["worker"], PATHS)["probe_digest"]
    assert first == dag_bundles.plan([git_bundle(refresh_interval=99)], ["worker"], PATHS)["probe_digest"]
    assert first != dag_bundles.plan([git_bundle(ssh_private_key=KEY.replace("not", "NOT"))], ["worker"], PATHS)["probe_digest"]
    assert first != dag_bundles.plan([git_bundle(tracking_ref="release")], ["worker"], PATHS)["probe_digest"]
    assert KEY not in first


def test_without_secrets_keeps_the_shape_and_hides_the_credentials():
    hidden = dag_bundles.without_secrets([git_bundle(), LOCAL])
    assert hidden[1] == LOCAL and hidden[0]["repo_url"] == git_bundle()["repo_url"]
    assert KEY not in json.dumps(hidden)
    assert hidden == dag_bundles.without_secrets([git_bundle(), LOCAL])
    assert hidden != dag_bundles.without_secrets([git_bundle(ssh_private_key=KEY + " "), LOCAL])


def test_the_filter_refuses_a_bad_list_and_plans_a_good_one():
    with pytest.raises(AnsibleFilterError, match="dag_bundle_plan: airflow_dag_bundles on this host"):
        filters.dag_bundle_plan([{"name": "x", "kind": "svn"}], ["worker"], PATHS)
    assert filters.dag_bundle_plan([LOCAL], ["worker"], PATHS)["config_list"][0]["name"] == "dags-folder"


# --- git_check.py against a repository on this machine ---------------------------------------------

@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("git")
    work, bare = root / "work", root / "dags.git"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "PATH": "/usr/bin:/bin", "HOME": str(root)}
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    (work / "dag.py").write_text("# v1\n")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "v1"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=env)
    return bare


def probe(bundle: dict, tmp_path: Path) -> str:
    return git_check.probe(bundle, str(tmp_path))


def test_the_probe_passes_for_an_existing_branch_and_names_a_missing_one(repository, tmp_path):
    # The probe accepts only ssh and https URLs from the plan; file:// stands in for a server here.
    url = f"file://{repository}"
    assert probe({"name": "d", "url": url, "ref": "main"}, tmp_path) == ""
    assert probe({"name": "d", "url": url, "ref": "nope"}, tmp_path) == "the repository has no ref nope (a branch or tag)"


def test_the_probe_reports_git_s_reason_for_a_missing_repository(tmp_path):
    reason = probe({"name": "d", "url": f"file://{tmp_path}/missing.git", "ref": "main"}, tmp_path)
    assert reason and "missing.git" in reason


def test_the_probe_refuses_an_unknown_host_key_instead_of_trusting_it(tmp_path):
    if not shutil.which("ssh"):
        pytest.skip("ssh is not installed")
    # 127.0.0.1:9 (discard) answers nothing: ssh fails on the connection, never asks to trust a key.
    reason = probe({"name": "d", "url": "ssh://git@127.0.0.1:9/x.git", "ref": "main", "ssh_private_key": KEY,
                    "known_hosts": ""}, tmp_path)
    assert reason and "yes/no" not in reason


def test_the_probe_prints_each_failed_bundle_by_name_and_exits_1(repository, monkeypatch, capsys):
    bundles = [{"name": "good", "url": f"file://{repository}", "ref": "main"},
               {"name": "bad", "url": f"file://{repository}", "ref": "release"}]
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(json.dumps(bundles)))
    assert git_check.main() == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"bundle bad (file://{repository}, tracking_ref release): the repository has no ref release (a branch or tag)"]


# --- bundle_age.py: how long ago each bundle was fetched -------------------------------------------

bundle_age = load("bundle_age", ROOT / "roles" / "_airflow_common" / "files" / "bundle_age.py")


def test_missed_refreshes_count_whole_intervals_since_the_last_fetch(tmp_path):
    fetch_head = tmp_path / "git-dags" / "bare" / "FETCH_HEAD"
    fetch_head.parent.mkdir(parents=True)
    fetch_head.write_text("")
    fetched = fetch_head.stat().st_mtime
    assert bundle_age.missed_refreshes(str(tmp_path), "git-dags", 30, fetched + 29) == 0
    assert bundle_age.missed_refreshes(str(tmp_path), "git-dags", 30, fetched + 151) == 5
    assert bundle_age.missed_refreshes(str(tmp_path), "git-dags", 30, fetched - 10) == 0


def test_a_bundle_never_fetched_counts_from_its_mirror_or_the_storage(tmp_path):
    (tmp_path / "cloned" / "bare").mkdir(parents=True)
    made = (tmp_path / "cloned" / "bare").stat().st_mtime
    assert bundle_age.missed_refreshes(str(tmp_path), "cloned", 60, made + 130) == 2
    storage = tmp_path.stat().st_mtime
    assert bundle_age.missed_refreshes(str(tmp_path), "never", 60, storage + 600) == 10


def test_one_gauge_per_bundle_under_the_statsd_prefix(tmp_path):
    lines = bundle_age.gauges("airflow", str(tmp_path), {"b": 30, "a": 300}, tmp_path.stat().st_mtime + 61)
    assert lines == ["airflow.dag_bundle.a.missed_refreshes:0|g", "airflow.dag_bundle.b.missed_refreshes:2|g"]


def test_the_gauges_go_to_the_statsd_receiver_over_udp(tmp_path, capsys):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        assert bundle_age.main(["--statsd", f"127.0.0.1:{port}", "--prefix", "airflow", "--storage", str(tmp_path),
                                "git-dags=30"]) == 0
        assert receiver.recv(512) == b"airflow.dag_bundle.git-dags.missed_refreshes:0|g"
    assert capsys.readouterr().out.strip() == "airflow.dag_bundle.git-dags.missed_refreshes:0|g"


def test_only_the_dag_processor_host_watches_its_git_bundles():
    assert dag_bundles.plan([LOCAL, git_bundle(refresh_interval=45)], ["dag-processor"], PATHS)["watched"] == ["team-dags=45"]
    assert dag_bundles.plan([LOCAL, git_bundle()], ["worker"], PATHS)["watched"] == []
    assert dag_bundles.plan([LOCAL], ["dag-processor"], PATHS)["watched"] == []
