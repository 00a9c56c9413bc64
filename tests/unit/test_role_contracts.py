"""Static contracts every role keeps (no hosts needed)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def spec_options(role: str) -> dict:
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return spec["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_matches_defaults(role):
    """Every default is specified; every specified input has a default or is required."""
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    options = spec_options(role)
    assert sorted(set(defaults) - set(options)) == [], "defaults missing from meta/argument_specs.yml"
    undeclared = [k for k, v in options.items() if k not in defaults and not v.get("required")]
    assert undeclared == [], "inputs with neither a default nor required: true"


@pytest.mark.parametrize("role", ROLES)
def test_inputs_are_role_prefixed(role):
    prefix = role + "_"
    assert [k for k in spec_options(role) if not k.startswith(prefix)] == []
    internal = load(ROOT / "roles" / role / "vars" / "main.yml") if (ROOT / "roles" / role / "vars" / "main.yml").exists() else {}
    assert [k for k in internal if not k.startswith("__" + prefix)] == []


@pytest.mark.parametrize("role", ROLES)
def test_secrets_are_required_and_hidden(role):
    """No default password: secret inputs are required and never logged."""
    for name, option in spec_options(role).items():
        if any(word in name for word in ("password", "secret", "fernet", "token")):
            assert option.get("no_log") is True, f"{name} lacks no_log"
            assert "default" not in option, f"{name} has a default"
            assert option.get("required") is True, f"{name} is not required"


@pytest.mark.parametrize("template", sorted(ROOT.glob("roles/*/templates/*.j2")) + sorted(ROOT.glob("templates/*.j2")), ids=str)
def test_templates_say_they_are_managed(template):
    assert template.read_text().startswith("{{ ansible_managed | comment }}")
