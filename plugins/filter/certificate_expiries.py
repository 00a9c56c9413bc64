# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filters airflow_ops.celery.certificate_expiries: when each certificate of the cluster expires, for
the monitoring host's alert (the prometheus role's prometheus_certificates); and
airflow_ops.celery.certificates_valid_for (documented in certificates_valid_for.yml beside this
file): which of a host's certificates stay valid through site_tls_renew_days, so the certificates
play signs the others again.

No packaged exporter reports a certificate's expiry for every server of the cluster (Prometheus's
blackbox exporter cannot ask PostgreSQL for TLS), so site.yml reads the certificates themselves
(the plan's tls_certificates, one slurp each on its host) and this filter reads their end dates on
the controller, with the cryptography package Ansible itself needs: no module run per certificate."""

from __future__ import annotations

import base64
import binascii
import time

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: certificate_expiries
short_description: Host, service and end (epoch seconds) of each certificate read
version_added: "0.1.0"
description:
  - Takes the results of a loop of C(ansible.builtin.slurp) over the plan's C(tls_certificates) (so each
    result's C(item) is the plan's entry, with C(host), C(service) and C(path), and its C(content) the PEM,
    base64-encoded) and returns one entry per certificate read, with its C(not_after) in seconds since the epoch.
  - Results without C(content) are left out (the file was not there, as in check mode on a first run).
options:
  _input:
    description: The loop's C(results).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
prometheus_certificates: "{{ __site_certificate_files.results | default([]) | airflow_ops.celery.certificate_expiries }}"
"""

RETURN = r"""
_value:
  description: C(host), C(service) and C(not_after) of each certificate.
  type: list
  elements: dict
"""


def not_after_seconds(content_b64: str, where: str, name: str = "certificate_expiries") -> int:
    """The end of the PEM certificate in content_b64 (slurp's content), in seconds since the epoch."""
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(base64.b64decode(content_b64))
    except (binascii.Error, TypeError, ValueError) as err:
        raise AnsibleFilterError(f"{name}: {where} holds no PEM certificate ({err})") from err
    return int(certificate.not_valid_after_utc.timestamp())


def certificate_expiries(results):
    expiries = []
    for result in results or []:
        entry = result.get("item")
        if not result.get("content") or not isinstance(entry, dict):
            continue
        where = f"{entry.get('path')} on {entry.get('host')}"
        expiries.append({"host": entry["host"], "service": entry["service"], "not_after": not_after_seconds(result["content"], where)})
    return expiries


def certificates_valid_for(results, days, now=None):
    """For each result of a slurp loop, whether its certificate is still valid `days` days from now
    (False where nothing was read: a certificate to make)."""
    moment = (time.time() if now is None else now) + int(days) * 86400
    return [bool(result.get("content")) and not_after_seconds(result["content"], str(result.get("source") or result.get("item")),
                                                              "certificates_valid_for") > moment
            for result in results or []]


class FilterModule:
    def filters(self):
        return {"certificate_expiries": certificate_expiries, "certificates_valid_for": certificates_valid_for}
