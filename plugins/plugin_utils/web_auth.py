# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""Logins and TLS of the HTTP servers built on Prometheus's exporter-toolkit: Prometheus itself and
the PostgreSQL exporter (their --web.config.file). The Redis exporter of Debian 12 (1.45) reads no
such file; the firewall alone limits who reaches it.

A login list is "user:password" or "user1:password1,user2:password2", as flower_basic_auth. The web
config holds bcrypt hashes of the passwords, never the passwords: its salt comes from the password
and the user (HMAC), so the same login gives the same file in every run and a run changes nothing
unless a login changed. Prometheus logs in to the exporter as SCRAPE_USER with a password derived
from its own logins (scrape_password), so no other secret is needed and the exporter's host holds
only a hash of it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SCRAPE_USER = "prometheus"
BCRYPT_COST = 10
PASSWORD_CONTEXT = b"airflow_ops.celery scrape login "
# A login list: users without ':' ',' or whitespace, passwords of 12 or more characters without ',' or whitespace.
LOGINS = re.compile(r"[^:,\s]+:[^,\s]{12,}(,[^:,\s]+:[^,\s]{12,})*")
# bcrypt's own base64 alphabet (not RFC 4648's).
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def logins(text: str) -> list[tuple[str, str]]:
    """[(user, password)] of a login list; ValueError naming the format when it is not one."""
    if not LOGINS.fullmatch(str(text or "")):
        raise ValueError('a login list is "user:password" or "user1:password1,user2:password2", passwords at least 12 '
                         "characters without commas or whitespace")
    return [tuple(pair.split(":", 1)) for pair in text.split(",")]


def scrape_password(secret_logins: str, target: str) -> str:
    """The password Prometheus logs in to `target` with: derived from Prometheus's login list (64 hex
    characters); one target's password gives neither another's nor the logins'."""
    if not target:
        raise ValueError("scrape_password needs the target's name")
    return hmac.new(str(secret_logins).encode(), PASSWORD_CONTEXT + target.encode(), hashlib.sha256).hexdigest()


def _bcrypt_base64(data: bytes) -> str:
    """bcrypt's base64 of 16 bytes: 22 characters, the last one carrying 2 bits."""
    bits = int.from_bytes(data, "big") << 4  # 128 bits padded to 132 = 22 x 6
    return "".join(_BCRYPT_ALPHABET[(bits >> (6 * (21 - i))) & 63] for i in range(22))


def bcrypt_hash(user: str, password: str) -> str:
    """The bcrypt hash ($2b$) of the password, with a salt derived from user and password."""
    import bcrypt  # on the controller only: requirements.txt

    seed = hmac.new(password.encode(), b"airflow_ops.celery bcrypt salt " + user.encode(), hashlib.sha256).digest()[:16]
    salt = f"$2b${BCRYPT_COST:02d}${_bcrypt_base64(seed)}".encode()
    return bcrypt.hashpw(password.encode(), salt).decode()


def web_config(login_list: str, cert_file: str = "", key_file: str = "") -> dict:
    """exporter-toolkit's web configuration: TLS with the certificate and key where given (both or
    neither), basic auth for every login of the list where there is one."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("a certificate needs its key, and a key its certificate")
    config: dict = {}
    if cert_file:
        config["tls_server_config"] = {"cert_file": cert_file, "key_file": key_file}
    if login_list:
        config["basic_auth_users"] = {user: bcrypt_hash(user, password) for user, password in logins(login_list)}
    return config
