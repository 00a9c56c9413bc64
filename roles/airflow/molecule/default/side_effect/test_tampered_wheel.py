"""Hash-checked installs (roles/_airflow_common/tasks/install.yml): a wheel changed in the
wheelhouse fails the install, and the install that runs keeps serving.

The test changes the installer to pip, which makes a new install (a new virtualenv, and a
wheelhouse without uv under a new key). It writes that wheelhouse on the controller from the one
the host installed from, with one wheel changed, runs the roles, and puts the host back: the
half-built virtualenv goes and the host's own wheelhouse returns. side_effect.yml runs this file; the verifier
only observes.
"""

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from airflow_ops_testlib import airflow_component_units, container_ip, http, run_playbook

FIRST = "af-airflow-debian12"
testinfra_hosts = [f"ansible://{FIRST}"]

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
WHEELHOUSES = ROOT / ".cache" / "wheelhouse"  # airflow_wheelhouse_dir (molecule.yml)
FINDER = ROOT / "roles" / "_airflow_common" / "files" / "wheelhouse.py"
LOCKS = ROOT / "roles" / "_airflow_common" / "files" / "constraints"
INSTALL_TASK = "Install Apache Airflow (only when version, extras or lock changed)"
CHANGED = "six"  # a pure-Python wheel every lock pins
HOST_WHEELHOUSE = "/var/cache/airflow-ops/wheelhouse"  # the role's __airflow_common_wheelhouse_host_dir
HOST_STAMP = "/var/cache/airflow-ops/wheelhouse.key"  # and __airflow_common_wheelhouse_stamp


def pip_wheelhouse(uv_key: str) -> Path:
    """The controller's wheelhouse for the same lock and target as `uv_key`, without uv (pip)."""
    lock, arch, glibc = re.fullmatch(r"(airflow-.+-python(3\.\d+))-(x86_64|aarch64)-glibc([\d.]+)-[0-9a-f]+", uv_key).group(1, 3, 4)
    python = lock.rsplit("python", 1)[1]
    found = subprocess.run([sys.executable, str(FINDER), "--dir", str(WHEELHOUSES), "--lock", str(LOCKS / f"{lock}.txt"),
                            "--python", python, "--arch", arch, "--glibc", glibc, "--uv", "", "--check"],
                           capture_output=True, text=True, check=True)
    return Path(json.loads(found.stdout)["tar"])


def write_changed_copy(source: Path, target: Path) -> str:
    """Every wheel of `source` but uv's into `target`, the CHANGED one with a module more (a valid
    wheel whose sha256 is no longer the lock's). Returns that wheel's name."""
    changed = ""
    with tarfile.open(source) as wheels, tarfile.open(target, "w") as out:
        for member in wheels.getmembers():
            if member.name.startswith("uv-"):
                continue
            data = wheels.extractfile(member).read()
            if member.name.startswith(f"{CHANGED}-"):
                buffer = io.BytesIO(data)
                with zipfile.ZipFile(buffer, "a") as wheel:
                    wheel.writestr("sitecustomize_from_the_wheelhouse.py", "print('not what the lock pinned')\n")
                data, changed = buffer.getvalue(), member.name
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    assert changed, f"no {CHANGED} wheel in {source}"
    return changed


def serving(host) -> dict:
    """What runs now: the CLI's virtualenv, each unit's main PID, the api server's answer."""
    pids = {unit: host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip() for unit in airflow_component_units(host)}
    status, _unused = http("GET", f"http://{container_ip(FIRST)}:8080/api/v2/monitor/health")
    return {"venv": host.run("readlink -f /opt/airflow/venv").stdout.strip(), "pids": pids, "health": status}


def test_a_changed_wheel_fails_the_install_and_the_running_install_keeps_serving(host, tmp_path):
    before = serving(host)
    assert before["health"] == 200 and all(pid not in ("", "0") for pid in before["pids"].values()), before
    venvs_before = set(host.run("ls /opt/airflow/venvs").stdout.split())
    uv_key = host.file(HOST_STAMP).content_string.strip()
    tampered = pip_wheelhouse(uv_key)
    assert not tampered.exists(), f"{tampered} exists already"
    assert host.run(f"cp -a {HOST_WHEELHOUSE} {HOST_WHEELHOUSE}.kept && cp -a {HOST_STAMP} {HOST_STAMP}.kept").rc == 0
    try:
        wheel = write_changed_copy(WHEELHOUSES / f"{uv_key}.tar", tampered)
        extra = tmp_path / "pip.json"
        extra.write_text(json.dumps({"airflow_installer": "pip"}))
        run = run_playbook(str(CONVERGE), "--limit", FIRST, "-e", f"@{extra}")

        assert run.returncode != 0
        failed = [result for result in run.results if result["status"] == "failed"]
        assert [(result["host"], result["task"].split(" : ")[-1]) for result in failed] == [(FIRST, INSTALL_TASK)], failed
        # pip's own words, naming the distribution and the hash it got instead of the lock's.
        assert "DO NOT MATCH THE HASHES" in failed[0]["error"] and f"{CHANGED}==" in failed[0]["error"], failed[0]["error"]
        assert wheel.split("-")[0] == CHANGED
        after = serving(host)
        assert after == before
    finally:
        tampered.unlink(missing_ok=True)
        for venv in set(host.run("ls /opt/airflow/venvs").stdout.split()) - venvs_before:
            host.run(f"rm -rf /opt/airflow/venvs/{venv}")
        # The host's wheelhouse is the changed one now: the one it installed from goes back.
        assert host.run(f"rm -rf {HOST_WHEELHOUSE} && mv {HOST_WHEELHOUSE}.kept {HOST_WHEELHOUSE} "
                        f"&& mv {HOST_STAMP}.kept {HOST_STAMP}").rc == 0
