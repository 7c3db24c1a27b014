"""docker-compose.yml parses, and uses the variable names the code and scripts read."""

from __future__ import annotations

import re

import pytest
import yaml

from migration_assets_tests.conftest import ROOT

pytestmark = pytest.mark.unit


def code_env_names() -> set[str]:
    names = set(re.findall(r'EnvVar(?:\.int)?\("([A-Z_]+)"\)', (ROOT / "migration_assets" / "defs" / "environment.py").read_text()))
    names |= set(re.findall(r"env: ([A-Z_]+)", (ROOT / "dagster.yaml").read_text()))
    return names


def test_compose_parses_and_is_complete():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mongo", "postgres", "user_code", "webserver", "daemon"} <= set(services)
    assert services["mongo"]["image"] == "mongo:7"
    assert services["postgres"]["image"].startswith("postgres:15")
    env = services["user_code"]["environment"]
    assert code_env_names() <= set(env), code_env_names() - set(env)
    for svc in ("webserver", "daemon", "user_code"):
        assert services[svc]["environment"] == env  # one anchor, identical everywhere


def test_local_scripts_export_the_same_names():
    text = (ROOT / "scripts" / "env.sh").read_text()
    exported = set(re.findall(r"export ([A-Z_]+)=", text))
    assert code_env_names() <= exported
