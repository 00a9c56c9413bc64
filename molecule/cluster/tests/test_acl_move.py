"""The move of a cluster set up before broker ACL users to them, as side_effect.yml did it under
`make test-upgrade` (acl_move.py's record): one site.yml run, with tasks running and queued. `make
test` skips this file: its cluster starts with ACL users."""

import json
import os
import pytest

from airflow_ops_testlib import record_figure, side_effect, side_effect_run

testinfra_hosts = ["ansible://cl-api"]

pytestmark = pytest.mark.skipif(not os.environ.get("AIRFLOW_OPS_UPGRADE_FROM"),
                                reason="make test does not move a cluster to ACL users: make test-upgrade does (docs/testing.md)")
# Each host's components and the broker users site.yml gives them (playbooks/vars/site.yml).
USERS = {"cl-broker": ["exporter", "flower"], "cl-scheduler": ["scheduler"],
         "cl-worker1": ["worker"], "cl-worker2": ["worker"], "cl-worker3": ["worker"]}


@pytest.fixture(scope="module")
def move():
    return json.loads(side_effect("acl-move.json").read_text())


def test_every_client_was_logged_in_as_default_before_the_move(move):
    """The starting point is the old one: no ACL user but `default`, and every client (workers
    with tasks running among them) logged in as it; the exporter reads Redis with it."""
    assert [line.split()[1] for line in move["acl_list_before"]] == ["default"], move["acl_list_before"]
    assert move["exporter_up_before"] == "1"
    assert set(USERS) <= set(move["logins_before"]), move["logins_before"]
    assert all(users == ["default"] for users in move["logins_before"].values()), move["logins_before"]


def test_one_site_run_moved_every_client_to_its_own_user_and_turned_default_off(move):
    run = side_effect_run("acl-move", move["rc"])
    assert run.returncode == 0, run.output[-3000:]
    assert not [r for r in run.results if r["status"] == "failed"], run.output[-3000:]
    default = [line for line in move["acl_list_after"] if line.split()[1] == "default"]
    assert len(default) == 1 and " off " in f"{default[0]} ", move["acl_list_after"]
    # The scheduler may have nothing to send after the last play's ACL LOAD logged every client
    # out, and the exporter logs in for each scrape only.
    logged_in = {host: users for host, users in move["logins_after"].items() if host in USERS}
    assert logged_in == {host: [user for user in USERS[host] if user in logged_in[host]] for host in logged_in}, move["logins_after"]
    assert {"cl-broker", "cl-worker1", "cl-worker2", "cl-worker3"} <= set(logged_in), move["logins_after"]
    assert move["exporter_up_after"] == "1"
    assert not [host for host, users in move["logins_after"].items() if "default" in users], move["logins_after"]


def test_no_task_queued_or_running_during_the_move_was_lost_or_retried(move):
    record_figure(f"ACL move: site.yml in {move['playbook_seconds']} s with {move['waiting_at_start']} of"
                  f" {len(move['states'])} tasks waiting at its start; tries {sorted(move['tries'].values())}")
    assert move["waiting_at_start"] > 0, move
    assert move["run_state"] == "success", move
    assert set(move["states"].values()) == {"success"} and len(move["states"]) == 16, move["states"]
    assert set(move["tries"].values()) == {1}, move["tries"]
    assert move["left_running_or_queued"] == [], move["left_running_or_queued"]


def test_no_client_was_refused_before_the_move(move):
    """ACL LOG read before the move restarted the broker (which empties it): the scenario's steps
    before it ran as their users; test_users reads it for the move and after."""
    assert move["acl_log_before"] == []
