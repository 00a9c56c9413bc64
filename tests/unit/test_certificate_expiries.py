"""When each certificate expires, for the monitoring host's alert (plugins/filter/certificate_expiries.py).
Pure Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("certificate_expiries", ROOT / "plugins" / "filter" / "certificate_expiries.py")
certificate_expiries = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(certificate_expiries)
expiries = certificate_expiries.certificate_expiries


def read(host, service, not_after):
    """One result of the x509_certificate_info loop over the slurp loop's results."""
    entry = {"host": host, "service": service, "path": f"/etc/airflow-ops/tls/{service}.crt"}
    return {"not_after": not_after, "item": {"content": "LS0t", "item": entry}}


def test_each_certificate_read_gives_its_end_in_seconds_since_the_epoch_utc():
    results = [read("data", "redis", "20271207033000Z"), read("core", "ca", "19700101000001Z")]
    assert expiries(results) == [{"host": "data", "service": "redis", "not_after": 1828150200},
                                 {"host": "core", "service": "ca", "not_after": 1}]


def test_a_certificate_that_was_not_there_is_left_out():
    # check mode on a first run: the slurp failed, the info task skipped that item
    skipped = {"skipped": True, "item": {"failed": True, "item": {"host": "w1", "service": "api_server", "path": "x"}}}
    assert expiries([skipped, read("data", "redis", "20271207033000Z")]) == [
        {"host": "data", "service": "redis", "not_after": 1828150200}]
    assert expiries([]) == [] and expiries(None) == []


def test_an_end_date_that_is_not_one_fails_with_its_value():
    with pytest.raises(AnsibleFilterError, match="'2027-12-07' is not a certificate end date"):
        expiries([read("data", "redis", "2027-12-07")])
