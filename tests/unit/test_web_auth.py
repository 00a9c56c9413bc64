"""Logins and TLS of Prometheus and the PostgreSQL exporter (plugins/plugin_utils/web_auth.py and the
filters of plugins/filter/web_auth.py). Pure Python."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import web_auth  # noqa: E402

_spec = importlib.util.spec_from_file_location("web_auth_filters", ROOT / "plugins" / "filter" / "web_auth.py")
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

LOGINS = "admin:molecule-Admin-Secret-1,ops:another-Secret-22"


def test_the_web_config_holds_a_bcrypt_hash_of_each_password_and_never_the_password():
    config = web_auth.web_config(LOGINS)
    assert set(config) == {"basic_auth_users"}
    users = config["basic_auth_users"]
    assert set(users) == {"admin", "ops"}
    assert bcrypt.checkpw(b"molecule-Admin-Secret-1", users["admin"].encode())
    assert bcrypt.checkpw(b"another-Secret-22", users["ops"].encode())
    assert not bcrypt.checkpw(b"another-Secret-22", users["admin"].encode())
    assert "molecule-Admin-Secret-1" not in str(config) and "another-Secret-22" not in str(config)
    assert all(h.startswith(f"$2b${web_auth.BCRYPT_COST}$") for h in users.values())


def test_the_same_logins_give_the_same_file_and_another_password_another_salt():
    """A second run writes the same hashes (no change, no restart); the salt is not shared."""
    assert web_auth.web_config(LOGINS) == web_auth.web_config(LOGINS)
    one = web_auth.bcrypt_hash("admin", "molecule-Admin-Secret-1")
    other = web_auth.bcrypt_hash("admin", "molecule-Admin-Secret-2")
    assert one[:29] != other[:29]  # $2b$10$ and the 22 characters of the salt
    assert web_auth.bcrypt_hash("ops", "molecule-Admin-Secret-1")[:29] != one[:29]


def test_a_salt_is_bcrypt_base64_of_16_bytes():
    assert web_auth._bcrypt_base64(bytes(16)) == "." * 22
    assert web_auth._bcrypt_base64(b"\xff" * 16) == "9" * 21 + "u"  # the last character holds 2 bits


def test_tls_is_served_with_the_certificate_and_key_given():
    config = web_auth.web_config("", "/etc/prometheus/tls/prometheus.crt", "/etc/prometheus/tls/prometheus.key")
    assert config == {"tls_server_config": {"cert_file": "/etc/prometheus/tls/prometheus.crt",
                                            "key_file": "/etc/prometheus/tls/prometheus.key"}}
    assert set(web_auth.web_config(LOGINS, "a.crt", "a.key")) == {"tls_server_config", "basic_auth_users"}
    assert web_auth.web_config("") == {}


@pytest.mark.parametrize("cert, key", [("a.crt", ""), ("", "a.key")])
def test_a_certificate_without_its_key_is_refused(cert, key):
    with pytest.raises(ValueError, match="certificate needs its key"):
        web_auth.web_config(LOGINS, cert, key)


@pytest.mark.parametrize("logins", ["admin", "admin:short", "admin:long-enough-Secret,", "a b:long-enough-Secret",
                                    "admin:long enough Secret", ":long-enough-Secret"])
def test_a_malformed_login_list_is_refused_naming_the_format(logins):
    with pytest.raises(ValueError, match='"user:password"'):
        web_auth.web_config(logins)
    with pytest.raises(AnsibleFilterError, match="web_config: a login list"):
        filters.web_config(logins)


def test_each_target_gets_its_own_scrape_password_and_none_gives_the_logins():
    postgresql = web_auth.scrape_password(LOGINS, "postgresql")
    assert len(postgresql) == 64 and int(postgresql, 16) >= 0
    assert postgresql == filters.scrape_password(LOGINS, "postgresql")
    assert postgresql != web_auth.scrape_password(LOGINS, "redis")
    assert postgresql != web_auth.scrape_password("admin:molecule-Admin-Secret-2", "postgresql")
    assert "molecule-Admin-Secret-1" not in postgresql
    with pytest.raises(AnsibleFilterError, match="target's name"):
        filters.scrape_password(LOGINS, "")
