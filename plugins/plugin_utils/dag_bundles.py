# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""DAG bundles (airflow_dag_bundles): where each Airflow host finds its DAGs, decided once here.

Pure Python, no Ansible. `errors(bundles, host, ...)` returns one message per problem, each naming
the host, the variable, the bundle and what is accepted; messages about a credential name it, never
its value. `plan(bundles, components, paths)` returns what the role applies on one host:

- config_list: [dag_processor] dag_bundle_config_list (every Airflow host gets the same list; no
  credential is in it);
- clones: whether this host clones Git bundles (its dag-processor parses them, its worker fetches
  the version each run started with): only then does it get Git, the credentials and the secrets
  backend that hands them to Airflow's Git hook;
- connections: the Airflow connection of each Git bundle (conn_type git, the key file and the
  pinned known_hosts file, strict host key checking), for LocalFilesystemBackend;
- files: the key, known_hosts and connections files (root-owned, readable by the airflow group,
  so task code can read the deploy key but never change it);
- probes: what files/git_check.py tries from the host before any of it is written (the repository
  answers with these credentials and the tracking ref exists), credentials included: the task that
  passes them is no_log;
- watched: where the dag-processor runs, each Git bundle and its refresh interval, for the timer
  that reports how long ago each was fetched (files/bundle_age.py).

tests/unit/test_dag_bundles.py calls both with plain values.
"""

from __future__ import annotations

import hashlib
import json
import re

LOCAL_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"
GIT_CLASS = "airflow.providers.git.bundles.git.GitDagBundle"
VARIABLE = "airflow_dag_bundles"
KINDS = ("local", "git")
FIELDS = {
    "local": {"name", "kind", "path", "refresh_interval"},
    "git": {"name", "kind", "repo_url", "tracking_ref", "subdir", "refresh_interval", "ssh_private_key", "known_hosts",
            "https_username", "https_token", "view_url_template"},
}
# The fields that hold several lines (a key, ssh-keyscan output): role_inputs' one-line rule skips them.
MULTILINE_FIELDS = ("ssh_private_key", "known_hosts")
SECRET_FIELDS = ("ssh_private_key", "https_token")
# The components that build a bundle: the dag-processor parses the tracking branch, a worker fetches
# the version a run started with. The scheduler, triggerer and api server never clone (CeleryExecutor).
CLONING_COMPONENTS = ("dag-processor", "worker")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")
# user@host:path (scp-like SSH), ssh://, https://
SCP_URL = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+\Z")
URL = re.compile(r"(ssh|https)://(?P<userinfo>[^@/\s]*@)?[A-Za-z0-9.\[\]:-]+(/[^\s]*)?\Z")
SHA = re.compile(r"[0-9a-f]{40}\Z")
REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
SUBDIR = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
KNOWN_HOSTS_LINE = re.compile(r"(@cert-authority\s+)?\S+\s+(ssh-|ecdsa-|sk-)\S+\s+\S+")


# What an empty airflow_dag_bundles (the role default) means: the DAGs folder alone, as Airflow's default.
DEFAULT = [{"name": "dags-folder", "kind": "local"}]


def effective(bundles) -> list:
    """The bundles a host gets: the list, or DEFAULT when it is empty."""
    return bundles or DEFAULT


def kind(bundle: dict) -> str:
    return str(bundle.get("kind", "git"))


def transport(url: str) -> str:
    """ssh, https or '' (not a URL the role accepts)."""
    if SCP_URL.match(url):
        return "ssh"
    match = URL.match(url)
    return match.group(1) if match else ""


def known_hosts_lines(value) -> list[str]:
    """known_hosts as a list of lines (the input may be ssh-keyscan output in one string, or a list)."""
    lines = value.splitlines() if isinstance(value, str) else [str(line) for line in (value or [])]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def errors(bundles, host: str, dags_src: str = "") -> list[str]:
    """Every problem of airflow_dag_bundles on this host; [] when it is fine."""
    where = f"{VARIABLE} on {host}"
    if bundles is None:
        return [f"{where} refers to a variable that is not defined (a vault variable of a key or token?)."]
    if not isinstance(bundles, list) or not all(isinstance(item, dict) for item in bundles):
        return [f"{where} must be a list of bundles, each a mapping with a name (empty, the default: the DAGs folder "
                "alone, [{name: dags-folder, kind: local}])."]
    bundles = effective(bundles)
    problems = []
    names = [str(bundle.get("name", "")) for bundle in bundles]
    for bundle in bundles:
        name = str(bundle.get("name", ""))
        label = f"{where}, bundle {name or '(no name)'}"
        what = kind(bundle)
        if not NAME.match(name) or name == "example_dags":
            problems.append(f"{label}: name must be 1-63 letters, digits, _ or - (not example_dags, Airflow's own).")
        if what not in KINDS:
            problems.append(f"{label}: kind={what} must be local or git.")
            continue
        unknown = sorted(set(bundle) - FIELDS[what])
        if unknown:
            problems.append(f"{label}: a {what} bundle takes {', '.join(sorted(FIELDS[what]))}; not {', '.join(unknown)}.")
        interval = bundle.get("refresh_interval")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
            problems.append(f"{label}: refresh_interval={interval} must be a whole number of seconds, at least 1.")
        if what == "local":
            path = str(bundle.get("path", "") or "")
            if path and not path.startswith("/"):
                problems.append(f"{label}: path={path} must be an absolute path on the host (default: the DAGs folder that "
                                "airflow_dags_src fills).")
            continue
        problems += git_errors(bundle, label)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"{where}: bundle names must be unique; {', '.join(duplicates)} repeated.")
    if dags_src and not any(kind(bundle) == "local" and not bundle.get("path") for bundle in bundles):
        problems.append(f"{where} lists no local bundle of the DAGs folder, so the DAGs airflow_dags_src={dags_src} copies "
                        "would never be parsed: add {name: dags-folder, kind: local}, or set airflow_dags_src to \"\".")
    return problems


def git_errors(bundle: dict, label: str) -> list[str]:
    problems = []
    url = str(bundle.get("repo_url", "") or "")
    scheme = transport(url)
    if not scheme:
        problems.append(f"{label}: repo_url={url or '(unset)'} must be an SSH URL (git@host:org/repo.git or "
                        "ssh://git@host[:port]/org/repo.git) or an https:// URL.")
    elif scheme == "https" and URL.match(url).group("userinfo"):
        problems.append(f"{label}: repo_url must not carry a user or token (it is written to airflow.cfg and shown in the "
                        "UI): give https_username and https_token instead.")
    ref = str(bundle.get("tracking_ref", "main"))
    if not REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        problems.append(f"{label}: tracking_ref={ref} must be a branch, a tag or a full commit SHA.")
    subdir = bundle.get("subdir")
    if subdir is not None and (not SUBDIR.match(str(subdir)) or ".." in str(subdir).split("/")):
        problems.append(f"{label}: subdir={subdir} must be a relative path inside the repository (no .., no leading /).")
    key = str(bundle.get("ssh_private_key", "") or "")
    token = str(bundle.get("https_token", "") or "")
    hosts = known_hosts_lines(bundle.get("known_hosts"))
    if scheme == "ssh":
        if not key:
            problems.append(f"{label}: an SSH repo_url needs ssh_private_key, the deploy key (read-only) in OpenSSH format, "
                            f"from Ansible Vault (e.g. ssh_private_key: \"{{{{ vault_git_deploy_key }}}}\").")
        elif "PRIVATE KEY-----" not in key or "ENCRYPTED" in key.split("\n", 1)[0]:
            problems.append(f"{label}: ssh_private_key must be an unencrypted private key in PEM or OpenSSH format "
                            "(-----BEGIN ... PRIVATE KEY-----); its value is not shown.")
        if not hosts:
            problems.append(f"{label}: an SSH repo_url needs known_hosts, the Git server's host keys (e.g. the output of "
                            "ssh-keyscan checked against the server): keys are never trusted on first use.")
        elif not all(KNOWN_HOSTS_LINE.match(line) for line in hosts):
            problems.append(f"{label}: known_hosts must hold known_hosts lines (host key-type key), as ssh-keyscan prints.")
        if token or bundle.get("https_username"):
            problems.append(f"{label}: https_username and https_token are for an https:// repo_url, not SSH.")
    if scheme == "https":
        if key or hosts:
            problems.append(f"{label}: ssh_private_key and known_hosts are for an SSH repo_url, not https://.")
        if token and not bundle.get("https_username"):
            problems.append(f"{label}: https_token needs https_username (the account or token name).")
    view = bundle.get("view_url_template")
    if view is not None and not str(view).startswith(("https://", "http://")):
        problems.append(f"{label}: view_url_template={view} must be an http(s) URL (Airflow drops any other).")
    return problems


def connection_id(name: str) -> str:
    return f"airflow_ops_git_{name}"


def plan(bundles: list, components: list, paths: dict, default_refresh: int = 30) -> dict:
    """What one host gets. paths: dags_dir (the DAGs folder), local_refresh (the local bundles'
    refresh seconds), secrets_dir (where the keys and connections go)."""
    clones = any(component in CLONING_COMPONENTS for component in components)
    secrets_dir = paths["secrets_dir"]
    config_list, connections, files, probes, watched = [], {}, [], [], []
    for bundle in effective(bundles):
        name = str(bundle["name"])
        if kind(bundle) == "local":
            config_list.append({"name": name, "classpath": LOCAL_CLASS, "kwargs": {
                "path": bundle.get("path") or paths["dags_dir"],
                "refresh_interval": int(bundle.get("refresh_interval", paths["local_refresh"]))}})
            continue
        url, ref = str(bundle["repo_url"]), str(bundle.get("tracking_ref", "main"))
        kwargs = {"repo_url": url, "tracking_ref": ref, "git_conn_id": connection_id(name),
                  "refresh_interval": int(bundle.get("refresh_interval", default_refresh))}
        if bundle.get("subdir"):
            kwargs["subdir"] = str(bundle["subdir"])
        if bundle.get("view_url_template"):
            kwargs["view_url_template"] = str(bundle["view_url_template"])
        config_list.append({"name": name, "classpath": GIT_CLASS, "kwargs": kwargs})
        watched.append(f"{name}={kwargs['refresh_interval']}")
        if not clones:
            continue
        probe = {"name": name, "url": url, "ref": ref}
        connection = {"conn_type": "git", "host": url}
        if transport(url) == "ssh":
            key_file, hosts_file = f"{secrets_dir}/{name}.key", f"{secrets_dir}/{name}.known_hosts"
            key = str(bundle["ssh_private_key"]).strip() + "\n"
            hosts = "\n".join(known_hosts_lines(bundle["known_hosts"])) + "\n"
            connection["extra"] = {"key_file": key_file, "known_hosts_file": hosts_file, "strict_host_key_checking": "yes"}
            # ssh reads a key owned by root only if the user running it is not its owner: root:airflow 0640.
            files += [{"path": key_file, "content": key, "mode": "0640"},
                      {"path": hosts_file, "content": hosts, "mode": "0644"}]
            probe.update(ssh_private_key=key, known_hosts=hosts)
        elif bundle.get("https_token"):
            connection.update(login=str(bundle["https_username"]), password=str(bundle["https_token"]))
            probe.update(https_username=str(bundle["https_username"]), https_token=str(bundle["https_token"]))
        connections[connection_id(name)] = connection
        probes.append(probe)
    if connections:
        files.append({"path": f"{secrets_dir}/connections.json", "content": json.dumps(connections, indent=2, sort_keys=True) + "\n",
                      "mode": "0640"})
    return {
        "config_list": config_list,
        "clones": bool(probes),
        "connections_file": f"{secrets_dir}/connections.json" if connections else "",
        "files": files,
        "probes": probes,
        # NAME=REFRESH_SECONDS of each Git bundle, for files/bundle_age.py where the dag-processor runs.
        "watched": watched if "dag-processor" in components else [],
        # The stamp of the last probe that passed: the probe runs again only when what it tries changed.
        "probe_digest": hashlib.sha256(json.dumps(probes, sort_keys=True).encode()).hexdigest() if probes else "",
    }


def without_secrets(bundles) -> list:
    """The bundles with their credentials replaced by a digest: what the cluster plan compares between hosts."""
    if not isinstance(bundles, list):
        return bundles
    return [{key: (hashlib.sha256(str(value).encode()).hexdigest()[:16] if key in SECRET_FIELDS else value)
             for key, value in bundle.items()} if isinstance(bundle, dict) else bundle for bundle in bundles]
