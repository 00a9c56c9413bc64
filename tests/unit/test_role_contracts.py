"""Static contracts every role keeps (no hosts needed)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def entry_point(role: str) -> str:
    """The entry point that documents a role's inputs: main, or host for the internal role."""
    return "host" if role == "_airflow_common" else "main"


def spec_options(role: str) -> dict:
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return spec["argument_specs"][entry_point(role)]["options"]


def input_prefixes(role: str) -> tuple[str, ...]:
    """Inputs carry the role's name; the internal _airflow_common takes the shared airflow_* inputs
    and its own entry-point inputs (_airflow_common_*)."""
    return ("airflow_", "_airflow_common_") if role == "_airflow_common" else (role + "_",)


def secrets_required_per_component() -> set[str]:
    """Secrets the shared Airflow preflight requires on the hosts whose components need them
    (vars/main.yml: __airflow_common_need_secrets), rather than everywhere."""
    needs = load(ROOT / "roles" / "_airflow_common" / "vars" / "main.yml")["__airflow_common_need_secrets"]
    return {name for names in needs.values() for name in names}


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_matches_defaults(role):
    """Every default is specified; every specified input has a default or is required."""
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    options = spec_options(role)
    assert sorted(set(defaults) - set(options)) == [], "defaults missing from meta/argument_specs.yml"
    undeclared = [k for k, v in options.items()
                  if k not in defaults and not v.get("required") and k not in secrets_required_per_component()]
    assert undeclared == [], "inputs with neither a default nor required: true"


@pytest.mark.parametrize("role", ROLES)
def test_inputs_are_role_prefixed(role):
    assert [k for k in spec_options(role) if not k.startswith(input_prefixes(role))] == []
    internal = load(ROOT / "roles" / role / "vars" / "main.yml") if (ROOT / "roles" / role / "vars" / "main.yml").exists() else {}
    assert [k for k in internal if not k.startswith("__" + role.lstrip("_") + "_")] == []


def test_inputs_have_one_owner():
    """Every input is declared by exactly one role, so the site preflight validates it once."""
    owners = {}
    for role in ROLES:
        for name in spec_options(role):
            owners.setdefault(name, []).append(role)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


@pytest.mark.parametrize("role", ROLES)
def test_no_role_depends_on_another(role):
    """Roles share code through include_role of _airflow_common, never through meta dependencies."""
    meta = load(ROOT / "roles" / role / "meta" / "main.yml")
    assert not meta.get("dependencies")


def test_templates_live_in_the_role_that_renders_them():
    assert not (ROOT / "templates").exists()
    for path in ROOT.glob("roles/**/*.yml"):
        assert "../../templates" not in path.read_text(), path


@pytest.mark.parametrize("role", ROLES)
def test_secrets_are_required_and_hidden(role):
    """No default password: secret inputs are required (everywhere, or on the hosts whose
    components need them) and never logged."""
    for name, option in spec_options(role).items():
        if any(word in name for word in ("password", "secret", "fernet", "token")):
            assert option.get("no_log") is True, f"{name} lacks no_log"
            assert "default" not in option, f"{name} has a default"
            assert option.get("required") is True or name in secrets_required_per_component(), f"{name} is not required"


def test_every_component_need_names_its_secrets():
    """The per-component table covers every component the roles run, and every need it names
    either carries secrets the preflight asks for or is settled without one."""
    common = load(ROOT / "roles" / "_airflow_common" / "vars" / "main.yml")
    components = set(load(ROOT / "roles" / "_airflow_common" / "meta" / "argument_specs.yml")
                     ["argument_specs"]["host"]["options"]["_airflow_common_components"]["choices"])
    assert set(common["__airflow_common_component_needs"]) == components
    needs = {need for needs in common["__airflow_common_component_needs"].values() for need in needs}
    assert needs == set(common["__airflow_common_need_secrets"])
    # The worker (untrusted task code) never gets a control-plane secret.
    assert set(common["__airflow_common_component_needs"]["worker"]) == {"broker", "result_backend", "api_secret_key"}


# Templates whose output is a secret the program reads whole, in a format without comments (the
# Redis exporter's JSON password file): nothing may come before the content.
WHOLE_CONTENT = {"roles/_exporter/templates/credential.j2"}


@pytest.mark.parametrize("template", sorted(ROOT.glob("roles/*/templates/*.j2")), ids=str)
def test_templates_say_they_are_managed(template):
    if str(template.relative_to(ROOT)) in WHOLE_CONTENT:
        assert template.read_text() == "{{ credential.content }}\n"
        return
    assert template.read_text().startswith("{{ ansible_managed | comment }}")


def test_the_cluster_scenario_converges_the_default_version_and_upgrades_from_a_shipped_lock():
    """Under `make test` the cluster runs the version the roles install by default; `make
    test-upgrade` starts it on UPGRADE_FROM, which must be an older version with a lock."""
    default = load(ROOT / "roles" / "_airflow_common" / "defaults" / "main.yml")["airflow_version"]
    cluster = load(ROOT / "molecule" / "cluster" / "molecule.yml")["provisioner"]["inventory"]["group_vars"]["all"]
    assert cluster["airflow_version"] == "${AIRFLOW_OPS_UPGRADE_FROM:-%s}" % default
    upgrade_from = next(line.split("?=")[1].strip() for line in (ROOT / "Makefile").read_text().splitlines()
                        if line.startswith("UPGRADE_FROM ?="))
    assert tuple(map(int, upgrade_from.split("."))) < tuple(map(int, default.split(".")))
    assert (ROOT / "roles" / "_airflow_common" / "files" / "constraints" / f"airflow-{upgrade_from}.in").exists()
