#!/usr/bin/env python3
"""Find, or download once, the wheelhouse of one install target; print it as JSON.

    wheelhouse.py --dir DIR --lock LOCK --python 3.11 --arch x86_64 --glibc 2.35 [--uv 0.13.9] [--check]

A wheelhouse is one tar file, DIR/<key>.tar, holding a wheel of every distribution the lock file
pins (and of uv when --uv is given, from the lock uv-<version>.txt beside LOCK) for one Python
minor and CPU architecture: everything an Airflow host needs to install with `--no-index
--find-links`. The key names the lock and the target and ends with a digest of every input that
decides the content (the locks' text, Python minor, architecture, newest glibc whose manylinux
wheels may be taken, uv version), so hosts with the same target share one tar, and a new lock or
target gets a new one.

The wheels come from `python -m pip download` with this Python's pip and its configuration
(pip.conf, PIP_INDEX_URL and the like): binary wheels only, no dependency resolution (the lock is
already resolved for that Python minor on Linux), for the target's interpreter, ABI and
manylinux platforms rather than this machine's, each checked against the sha256 hashes the lock
lists (`--require-hashes`); the hosts check them again when they install. Nothing is compiled, so
the controller may run another Python, distribution or architecture than the hosts.

The _airflow_common role runs this on the Ansible controller (airflow_install_source:
wheelhouse); playbooks/wheelhouse.yml runs it on a machine with internet to carry a wheelhouse
to a site without. Concurrent runs for the same DIR take turns (a lock file), so the first builds
a tar and the others find it. --check reports whether the tar exists and downloads nothing.

Output: {"key", "tar", "exists", "built", "wheels", "bytes"}.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Bump when the layout of a wheelhouse changes: every key changes with it.
FORMAT = "1"
ARCHES = ("x86_64", "aarch64")


def manylinux_platforms(arch: str, glibc: str) -> list[str]:
    """Every manylinux platform tag a host with this glibc accepts, newest first (PEP 600 and the
    legacy aliases manylinux2014/2010/1, which pip does not expand for a PEP 600 tag)."""
    major, minor = (int(part) for part in glibc.split("."))
    if major != 2 or minor < 17:
        raise ValueError(f"glibc {glibc}: manylinux wheels need 2.17 or newer")
    tags = [f"manylinux_2_{n}_{arch}" for n in range(minor, 16, -1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
    return tags


def hashed_pins(lock_text: str) -> dict[str, list[str]]:
    """`name==version` -> its `sha256:<hex>` hashes, for each requirement of a lock file as
    `uv pip compile --generate-hashes` writes it (continuation lines joined, comments dropped). A
    requirement that is not a plain pin, or that has no hash, is refused: the hosts install the lock
    with --require-hashes, which would refuse it there."""
    found: dict[str, list[str]] = {}
    logical = re.sub(r"\\\s*\n", " ", lock_text)
    for line in logical.splitlines():
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line:
            continue
        pin, *options = line.split()
        if ";" in line or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==[^\s;]+", pin):
            raise ValueError(f"lock line is not a plain pin (name==version): {line[:120]!r}")
        hashes = [option.split("=", 1)[1] for option in options if option.startswith("--hash=sha256:")]
        if not hashes or len(hashes) != len(options):
            raise ValueError(f"lock line of {pin} needs one or more --hash=sha256:<hex> and nothing else"
                             " (uv pip compile --generate-hashes): the hosts install with --require-hashes")
        found[pin] = hashes
    return found


def pins(lock_text: str) -> list[str]:
    """The `name==version` requirements of a lock file."""
    return list(hashed_pins(lock_text))


def requirement_text(lock_texts: list[str]) -> str:
    """One requirements file of every pin of these locks with its hashes, for pip download."""
    lines = []
    for text in lock_texts:
        lines += [f"{pin} " + " ".join(f"--hash={digest}" for digest in hashes) for pin, hashes in hashed_pins(text).items()]
    return "\n".join(lines) + "\n"


def uv_lock(lock: Path, uv: str) -> Path:
    """The hash lock of uv `uv`, beside the Airflow lock (files/constraints/uv-<version>.txt)."""
    path = lock.with_name(f"uv-{uv}.txt")
    if not path.is_file():
        raise ValueError(f"--uv {uv}: no lock {path.name} beside {lock.name} (files/constraints/README.md says how to make one)")
    return path


def key_of(lock: Path, lock_text: str, python: str, arch: str, glibc: str, uv: str) -> str:
    digest = hashlib.sha256(
        json.dumps([FORMAT, lock_text, python, arch, glibc, uv]).encode()
    ).hexdigest()[:12]
    return f"{lock.stem}-{arch}-glibc{glibc}-{digest}"


def download(args: argparse.Namespace, requirements: str, into: Path) -> None:
    abi = "cp" + args.python.replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--no-deps", "--only-binary=:all:", "--require-hashes",
        "--implementation", "cp", "--python-version", args.python,
        "--abi", abi, "--abi", "abi3", "--abi", "none",
        *[arg for tag in manylinux_platforms(args.arch, args.glibc) for arg in ("--platform", tag)],
        "--dest", str(into),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write(requirements)
        listed.flush()
        proc = subprocess.run(argv + ["--requirement", listed.name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(
            f"pip download of the wheelhouse failed ({proc.returncode}). On a controller without a route to "
            f"the package index, build it where there is one (playbooks/wheelhouse.yml) and copy "
            f"{args.dir} here.\n{tail}"
        )


def build(args: argparse.Namespace, requirements: str, tar: Path) -> int:
    """Download the wheels into a temporary directory and write the tar atomically; wheel count."""
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".build-") as tmp:
        wheels_dir = Path(tmp) / "wheels"
        download(args, requirements, wheels_dir)
        wheels = sorted(wheels_dir.glob("*.whl"))
        expected = len(requirements.splitlines())
        if len(wheels) != expected:
            raise RuntimeError(f"expected {expected} wheels, pip downloaded {len(wheels)}")
        partial = Path(tmp) / "wheelhouse.tar"
        # Reproducible: sorted names, root-owned 0644 files, fixed mtime.
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            for wheel in wheels:
                info = archive.gettarinfo(str(wheel), arcname=wheel.name)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o644
                info.mtime = 0
                with wheel.open("rb") as data:
                    archive.addfile(info, data)
        os.replace(partial, tar)
        return len(wheels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", required=True, help="directory of the wheelhouses (created)")
    parser.add_argument("--lock", type=Path, required=True, help="lock file: name==version with its --hash lines")
    parser.add_argument("--python", required=True, help="Python minor of the hosts, e.g. 3.11")
    parser.add_argument("--arch", required=True, choices=ARCHES)
    parser.add_argument("--glibc", required=True, help="newest glibc whose manylinux wheels may be taken, e.g. 2.35")
    parser.add_argument("--uv", default="", help="uv version to add (the uv installer; its lock uv-<version>.txt)")
    parser.add_argument("--check", action="store_true", help="report only; download nothing")
    args = parser.parse_args()
    args.dir = Path(os.path.expanduser(args.dir)).resolve()

    try:
        if not re.fullmatch(r"3\.\d+", args.python):
            raise ValueError(f"--python {args.python}: expected a Python 3 minor such as 3.11")
        if not re.fullmatch(r"\d+\.\d+", args.glibc):
            raise ValueError(f"--glibc {args.glibc}: expected a version such as 2.35")
        manylinux_platforms(args.arch, args.glibc)
        lock_texts = [args.lock.read_text()] + ([uv_lock(args.lock, args.uv).read_text()] if args.uv else [])
        requirements = requirement_text(lock_texts)
        key = key_of(args.lock, "".join(lock_texts), args.python, args.arch, args.glibc, args.uv)
        tar = args.dir / f"{key}.tar"
        result = {"key": key, "tar": str(tar), "exists": tar.is_file(), "built": False}
        if not result["exists"] and not args.check:
            args.dir.mkdir(parents=True, exist_ok=True)
            with open(args.dir / ".lock", "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                if not tar.is_file():
                    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False).returncode:
                        raise RuntimeError(
                            f"{sys.executable} has no pip: install it (python3-pip) or set airflow_wheelhouse_python "
                            "to a Python that has it"
                        )
                    build(args, requirements, tar)
                    result["built"] = True
            result["exists"] = True
        if result["exists"]:
            with tarfile.open(tar) as archive:
                members = archive.getmembers()
            result["wheels"] = len(members)
            result["bytes"] = tar.stat().st_size
        print(json.dumps(result))
        return 0
    except (OSError, ValueError, RuntimeError) as err:
        print(json.dumps({"error": str(err)}))
        print(err, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
