#!/usr/bin/env python3
"""`make demo`, last step (and `make demo-check`): the demo cluster as a user sees it in a browser.

Headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) logs in to the Airflow
UI as the admin, opens the example DAG's latest run and waits until the page shows the run's
state, then opens Flower's workers page with its basic-auth login and waits until both demo
workers are listed. Screenshots go to .cache/demo/ (ui-login.png, ui-dag-run.png,
flower-workers.png). Exits non-zero, naming what was missing, if a page does not show it within
--timeout seconds.

    demo/browser_check.py [--api URL] [--flower URL] [--ca FILE] [--timeout S]

Defaults: https://127.0.0.1:$DEMO_API_PORT (8080) and https://127.0.0.1:$DEMO_FLOWER_PORT (5555),
verified against the demo's CA (inventories/demo/tls/ca.crt): Chromium trusts that CA alone (an
NSS database in a HOME of its own), so a certificate it does not verify fails the check. The
passwords are read from .cache/demo/credentials/ (make demo generates them). The cluster scenario
runs check() too, with its own CA.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".cache" / "demo"
CREDENTIALS = OUT / "credentials"
DAG = "airflow_ops_fanout"
WORKERS = ["celery@demo-worker1", "celery@demo-worker2"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class CheckFailed(RuntimeError):
    pass


def secret(name: str) -> str:
    path = CREDENTIALS / name
    if not path.is_file():
        raise CheckFailed(f"{path} is missing: run `make demo` first")
    # The password lookup writes the password, then possibly " salt=...".
    return path.read_text().split()[0]


def latest_run(api: str, password: str, ca_file: str | None = None) -> dict:
    """The example DAG's newest run, over the REST API (what the page must then show)."""
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    request = urllib.request.Request(
        f"{api}/auth/token", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": "admin", "password": password}).encode(),
    )
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        token = json.load(response)["access_token"]
    request = urllib.request.Request(
        f"{api}/api/v2/dags/{DAG}/dagRuns?order_by=-run_after&limit=1",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        runs = json.load(response)["dag_runs"]
    if not runs:
        raise CheckFailed(f"{DAG} has no run yet: run `make demo` (its last step triggers one)")
    return runs[0]


def browser(profile: str, ca_file: str | None = None) -> webdriver.Chrome:
    """Headless Chromium with a fresh profile under `profile`, which is also its HOME: with ca_file,
    its NSS database there trusts that CA (Chromium on Linux reads added roots from ~/.pki/nssdb)."""
    nss = Path(profile, ".pki", "nssdb")
    nss.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    if ca_file:
        subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "airflow-ops-ca", "-t", "C,,", "-i", ca_file],
                       check=True, capture_output=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        # No calls home: this machine's network would refuse them, many at a time.
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1440,1000", f"--user-data-dir={profile}/chromium",
    ):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, env=dict(os.environ, HOME=profile))
    return webdriver.Chrome(service=service, options=options)


def missing_words(text: str, wanted: list[str]) -> list[str]:
    """The wanted words the page does not show. Whitespace is ignored: Flower breaks a worker's
    name after "celery@" in a narrow column."""
    flat = "".join(text.split()).lower()
    return [word for word in wanted if "".join(word.split()).lower() not in flat]


def wait_for_text(driver: webdriver.Chrome, wanted: list[str], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = driver.find_element(By.TAG_NAME, "body").text
        except WebDriverException:
            text = ""
        if not missing_words(text, wanted):
            return text
        time.sleep(1)
    missing = missing_words(text, wanted)
    raise CheckFailed(f"{what} ({driver.current_url}) did not show {missing} within {timeout:.0f} s; "
                      f"it showed: {' '.join(text.split())[:500]!r}")


def shot(driver: webdriver.Chrome, out: Path, name: str) -> Path:
    path = out / name
    driver.save_screenshot(str(path))
    print(f"[browser-check] screenshot {path}", flush=True)
    return path


def check(api: str, flower: str, timeout: float, admin_password: str, flower_login: tuple[str, str], workers: list[str],
          out: Path = OUT, ca_file: str | None = None) -> dict:
    """The UI's login, the latest run's page and Flower's workers page, as a user sees them. Returns
    the run and the cookies the browser holds after logging in (name, secure, httpOnly, sameSite)."""
    if ca_file and not Path(ca_file).is_file():
        raise CheckFailed(f"{ca_file} is missing: site.yml makes it on its first run with TLS on (run `make demo`)")
    run = latest_run(api, admin_password, ca_file)
    print(f"[browser-check] run {run['dag_run_id']} of {DAG}: {run['state']} (REST API)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airflow-ops-chromium-") as profile:
        driver = browser(profile, ca_file)
        try:
            # The UI sends an anonymous visitor to the FAB login form.
            driver.get(f"{api}/")
            wait_for_text(driver, ["Sign In"], timeout, "Airflow's login page")
            shot(driver, out, "ui-login.png")
            driver.find_element(By.NAME, "username").send_keys("admin")
            driver.find_element(By.NAME, "password").send_keys(admin_password)
            driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
            wait_for_text(driver, ["DAGs"], timeout, "the UI after logging in")
            cookies = driver.get_cookies()

            driver.get(f"{api}/dags/{DAG}/runs/{run['dag_run_id']}")
            wait_for_text(driver, [DAG, run["dag_run_id"], run["state"]], timeout, "the DAG run's page")
            shot(driver, out, "ui-dag-run.png")
            print(f"[browser-check] UI: logged in, the run page shows {run['dag_run_id']} {run['state']}", flush=True)

            # Flower's basic auth, sent with every request the page makes (its table loads by XHR).
            login = base64.b64encode(":".join(flower_login).encode()).decode()
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {login}"}})
            driver.get(f"{flower}/workers")
            wait_for_text(driver, workers, timeout, "Flower's workers page")
            shot(driver, out, "flower-workers.png")
            print(f"[browser-check] Flower: the workers page lists {', '.join(workers)}", flush=True)
        except CheckFailed:
            shot(driver, out, "failed.png")
            raise
        finally:
            driver.quit()
    return {"run": run, "cookies": cookies}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--api", default=f"https://127.0.0.1:{os.environ.get('DEMO_API_PORT') or 8080}")
    parser.add_argument("--flower", default=f"https://127.0.0.1:{os.environ.get('DEMO_FLOWER_PORT') or 5555}")
    parser.add_argument("--ca", default=str(ROOT / "inventories" / "demo" / "tls" / "ca.crt"),
                        help="CA of the demo's certificates; empty for plain HTTP")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    for path in (CHROMIUM, CHROMEDRIVER, "/usr/bin/certutil"):
        if not os.access(path, os.X_OK):
            print(f"[browser-check] {path} is missing: `scripts/test-platform browser` installs Debian's "
                  "chromium, chromium-driver and libnss3-tools", file=sys.stderr)
            return 2
    try:
        check(args.api, args.flower, args.timeout, secret("admin_password"), ("admin", secret("flower_password")), WORKERS,
              ca_file=args.ca or None)
    except (CheckFailed, OSError, WebDriverException) as err:
        print(f"[browser-check] FAILED: {err}", file=sys.stderr)
        return 1
    print("[browser-check] ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
