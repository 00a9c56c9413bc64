"""files/wheelhouse.py without a download: which wheels a target accepts, what a lock pins, and
which inputs make a new wheelhouse."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "_airflow_common" / "files" / "wheelhouse.py"
LOCKS = ROOT / "roles" / "_airflow_common" / "files" / "constraints"

spec = importlib.util.spec_from_file_location("wheelhouse", SCRIPT)
wheelhouse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wheelhouse)


def test_platforms_cover_every_manylinux_tag_up_to_the_glibc():
    tags = wheelhouse.manylinux_platforms("x86_64", "2.35")
    # cryptography ships manylinux_2_34 only; older wheels carry the legacy aliases.
    for tag in ("manylinux_2_35_x86_64", "manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"):
        assert tag in tags
    assert "manylinux_2_36_x86_64" not in tags
    assert all(tag.endswith("_aarch64") for tag in wheelhouse.manylinux_platforms("aarch64", "2.36"))
    with pytest.raises(ValueError):
        wheelhouse.manylinux_platforms("x86_64", "2.12")


@pytest.mark.parametrize("lock", sorted(LOCKS.glob("airflow-*-python3.*.txt")), ids=lambda p: p.name)
def test_every_shipped_lock_is_plain_pins_each_with_its_hashes(lock):
    """The hosts install each lock with --require-hashes --no-deps: every pin needs a sha256 of each
    file it may take, and the lock is the whole set (apache-airflow and uv's lock included)."""
    hashed = wheelhouse.hashed_pins(lock.read_text())
    assert len(hashed) > 150
    assert any(pin.startswith("apache-airflow==") for pin in hashed)
    assert all(hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in hashes) for hashes in hashed.values())


def test_the_shipped_uv_lock_has_a_hash_of_every_linux_wheel():
    for lock in LOCKS.glob("uv-*.txt"):
        hashed = wheelhouse.hashed_pins(lock.read_text())
        assert list(hashed) == [f"uv=={lock.stem[3:]}"]
        assert len(hashed[f"uv=={lock.stem[3:]}"]) >= 10  # x86_64 and aarch64, glibc and musl, ...
    assert wheelhouse.uv_lock(LOCKS / "airflow-3.3.2-python3.11.txt", "0.13.9").name == "uv-0.13.9.txt"
    with pytest.raises(ValueError, match="no lock uv-0.99.0.txt"):
        wheelhouse.uv_lock(LOCKS / "airflow-3.3.2-python3.11.txt", "0.99.0")


def test_lock_with_a_marker_a_range_or_no_hash_is_refused():
    digest = "--hash=sha256:" + "a" * 64
    with pytest.raises(ValueError, match="not a plain pin"):
        wheelhouse.pins(f"celery>=5.6 {digest}\n")
    with pytest.raises(ValueError, match="not a plain pin"):
        wheelhouse.pins(f'tomli==2.0.1 ; python_version < "3.11" {digest}\n')
    with pytest.raises(ValueError, match="needs one or more --hash"):
        wheelhouse.pins("six==1.17.0\n")
    with pytest.raises(ValueError, match="needs one or more --hash"):
        wheelhouse.pins("six==1.17.0 --hash=md5:abc\n")


def test_pins_and_the_download_requirements_keep_every_hash():
    text = ("# comment\nsix==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
            "uv==0.13.9 --hash=sha256:" + "c" * 64 + "\n")
    assert wheelhouse.hashed_pins(text) == {"six==1.17.0": ["sha256:" + "a" * 64, "sha256:" + "b" * 64],
                                            "uv==0.13.9": ["sha256:" + "c" * 64]}
    assert wheelhouse.requirement_text([text]).splitlines() == [
        f"six==1.17.0 --hash=sha256:{'a' * 64} --hash=sha256:{'b' * 64}", f"uv==0.13.9 --hash=sha256:{'c' * 64}"]


def test_key_changes_with_every_input_that_decides_the_content():
    lock = LOCKS / "airflow-3.3.2-python3.11.txt"
    text = lock.read_text()
    base = ("3.11", "x86_64", "2.35", "0.13.9")
    key = wheelhouse.key_of(lock, text, *base)
    assert key.startswith("airflow-3.3.2-python3.11-x86_64-glibc2.35-")
    assert wheelhouse.key_of(lock, text, *base) == key
    for index, other in enumerate(("3.13", "aarch64", "2.36", "0.14.0")):
        changed = list(base)
        changed[index] = other
        assert wheelhouse.key_of(lock, text, *changed) != key
    assert wheelhouse.key_of(lock, text + "six==1.17.0\n", *base) != key
