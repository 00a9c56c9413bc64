"""When each certificate expires, for the monitoring host's alert (plugins/filter/certificate_expiries.py).
Pure Python: the certificates are made here."""

from __future__ import annotations

import base64
import datetime
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("certificate_expiries", ROOT / "plugins" / "filter" / "certificate_expiries.py")
certificate_expiries = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(certificate_expiries)
expiries = certificate_expiries.certificate_expiries
KEY = ec.generate_private_key(ec.SECP256R1())


def pem(not_after: datetime.datetime) -> bytes:
    """A self-signed certificate that ends at not_after (UTC)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
                   .serial_number(1).not_valid_before(datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc))
                   .not_valid_after(not_after).sign(KEY, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


def read(host, service, content: bytes):
    """One result of the slurp loop over the plan's tls_certificates."""
    entry = {"host": host, "service": service, "path": f"/etc/airflow-ops/tls/{service}.crt"}
    return {"content": base64.b64encode(content).decode(), "encoding": "base64", "item": entry}


def test_each_certificate_read_gives_its_end_in_seconds_since_the_epoch_utc():
    results = [read("data", "redis", pem(datetime.datetime(2027, 12, 7, 3, 30, tzinfo=datetime.timezone.utc))),
               read("core", "ca", pem(datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)))]
    assert expiries(results) == [{"host": "data", "service": "redis", "not_after": 1828150200},
                                 {"host": "core", "service": "ca", "not_after": 1}]


def test_a_certificate_that_was_not_there_is_left_out():
    # check mode on a first run: the slurp failed (failed_when: false), no content
    missing = {"failed": True, "msg": "file not found", "item": {"host": "w1", "service": "api_server", "path": "x"}}
    ending = pem(datetime.datetime(2027, 12, 7, 3, 30, tzinfo=datetime.timezone.utc))
    assert expiries([missing, read("data", "redis", ending)]) == [{"host": "data", "service": "redis", "not_after": 1828150200}]
    assert expiries([]) == [] and expiries(None) == []


def test_a_file_that_holds_no_certificate_fails_naming_it():
    with pytest.raises(AnsibleFilterError, match="/etc/airflow-ops/tls/redis.crt on data holds no PEM certificate"):
        expiries([read("data", "redis", b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")])


def test_a_certificate_is_renewed_unless_it_stays_valid_through_the_renewal_days():
    now = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    in_40_days, in_10_days = now + datetime.timedelta(days=40), now + datetime.timedelta(days=10)
    results = [read("data", "redis", pem(in_40_days)), read("data", "flower", pem(in_10_days)),
               {"failed": True, "msg": "file not found", "item": "postgresql"}]
    valid = certificate_expiries.certificates_valid_for
    assert valid(results, 30, now=now.timestamp()) == [True, False, False]
    assert valid(results, 5, now=now.timestamp()) == [True, True, False]
    assert valid([], 30) == [] and valid(None, 30) == []
