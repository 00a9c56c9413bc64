# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Filter airflow_ops.celery.certificate_expiries: when each certificate of the cluster expires, for
the monitoring host's alert (the prometheus role's prometheus_certificates).

No packaged exporter reports a certificate's expiry for every server of the cluster (Prometheus's
blackbox exporter cannot ask PostgreSQL for TLS), so site.yml reads the certificates themselves
(the plan's tls_certificates) and hands Prometheus their end dates."""

from __future__ import annotations

import calendar
import time

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: certificate_expiries
short_description: Host, service and end (epoch seconds) of each certificate read
version_added: "0.1.0"
description:
  - Takes the results of a loop of C(community.crypto.x509_certificate_info) over the results of a
    C(ansible.builtin.slurp) loop over the plan's C(tls_certificates) (so each result's C(item.item) is
    the plan's entry, with C(host), C(service) and C(path)) and returns one entry per certificate read, with its
    C(not_after) in seconds since the epoch.
  - Results without C(not_after) are left out (skipped, because the file was not there, as in check mode on a first run).
options:
  _input:
    description: The loop's C(results).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
prometheus_certificates: "{{ __site_certificate_info.results | default([]) | airflow_ops.celery.certificate_expiries }}"
"""

RETURN = r"""
_value:
  description: C(host), C(service) and C(not_after) of each certificate.
  type: list
  elements: dict
"""


def not_after_seconds(value: str) -> int:
    """x509_certificate_info's not_after (ASN.1 time, UTC: 20271207033000Z) as seconds since the epoch."""
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%d%H%M%SZ"))
    except (TypeError, ValueError) as err:
        raise AnsibleFilterError(f"certificate_expiries: {value!r} is not a certificate end date (YYYYMMDDHHMMSSZ)") from err


def certificate_expiries(results):
    expiries = []
    for result in results or []:
        entry = (result.get("item") or {}).get("item")
        if not result.get("not_after") or not isinstance(entry, dict):
            continue
        expiries.append({"host": entry["host"], "service": entry["service"], "not_after": not_after_seconds(result["not_after"])})
    return expiries


class FilterModule:
    def filters(self):
        return {"certificate_expiries": certificate_expiries}
