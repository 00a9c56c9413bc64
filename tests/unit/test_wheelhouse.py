"""files/wheelhouse.py without a download: which wheels a target accepts, what a lock pins, and
which inputs make a new wheelhouse."""

import importlib.util
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
def test_every_shipped_lock_is_plain_pins(lock):
    pins = wheelhouse.pins(lock.read_text())
    assert len(pins) > 150
    assert any(pin.startswith("apache-airflow==") for pin in pins)


def test_lock_with_a_marker_or_range_is_refused():
    with pytest.raises(ValueError):
        wheelhouse.pins("celery>=5.6\n")
    with pytest.raises(ValueError):
        wheelhouse.pins('tomli==2.0.1 ; python_version < "3.11"\n')


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
