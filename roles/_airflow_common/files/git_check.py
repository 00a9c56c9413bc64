#!/usr/bin/python3
"""Whether this host reads every Git DAG bundle with its credential, before the role writes them.

Run as the airflow user (runuser), with the probes of plugins/plugin_utils/dag_bundles.py as JSON on
stdin: [{name, url, ref, ssh_private_key?, known_hosts?, https_username?, https_token?}]. For each,
`git ls-remote` with the key and the pinned known_hosts (StrictHostKeyChecking=yes: an unknown or
changed host key fails), or the token through a credential helper, from a private temporary
directory that is removed afterwards; nothing reaches a command line or the environment of another
process. Prints one line per bundle that failed, naming it, its URL and ref and git's own reason,
and exits 1 then; a full commit SHA as ref is checked for access only (ls-remote lists refs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

TIMEOUT = 60
SHA = re.compile(r"[0-9a-f]{40}\Z")


def probe(bundle: dict, work: str) -> str:
    """'' when the repository answered with the ref, else the reason."""
    env = {"PATH": "/usr/bin:/bin", "HOME": work, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    config = []
    if bundle.get("ssh_private_key"):
        key, hosts = os.path.join(work, "key"), os.path.join(work, "known_hosts")
        for path, text in ((key, bundle["ssh_private_key"]), (hosts, bundle.get("known_hosts", ""))):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
                out.write(text)
        env["GIT_SSH_COMMAND"] = " ".join(["ssh", "-i", shlex.quote(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={shlex.quote(hosts)}",
                                           "-o", "ConnectTimeout=15", "-F", "/dev/null"])
    elif bundle.get("https_token"):
        helper = os.path.join(work, "credentials")
        with open(os.open(helper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700), "w", encoding="utf-8") as out:
            out.write("#!/bin/sh\ntest \"$1\" = get || exit 0\n"
                      f"printf 'username=%s\\npassword=%s\\n' {shlex.quote(bundle['https_username'])} "
                      f"{shlex.quote(bundle['https_token'])}\n")
        config = ["-c", "credential.helper=", "-c", f"credential.helper={helper}"]
    ref = str(bundle["ref"])
    argv = ["git", *config, "ls-remote", "--exit-code", bundle["url"]] + ([] if SHA.match(ref) else [ref])
    try:
        done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"no answer within {TIMEOUT} s"
    if done.returncode == 2:
        return f"the repository has no ref {ref} (a branch or tag)"
    if done.returncode != 0:
        # git's reason, without its closing advice to check the access rights.
        lines = [line.strip() for line in done.stderr.splitlines()
                 if line.strip() and not line.startswith(("Please make sure", "and the repository exists"))]
        return " / ".join(lines[:3]) or f"git ls-remote exited {done.returncode}"
    return ""


def main() -> int:
    failures = []
    for bundle in json.load(sys.stdin):
        with tempfile.TemporaryDirectory(prefix="airflow-ops-git-") as work:
            reason = probe(bundle, work)
        if reason:
            failures.append(f"bundle {bundle['name']} ({bundle['url']}, tracking_ref {bundle['ref']}): {reason}")
    for line in failures:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
