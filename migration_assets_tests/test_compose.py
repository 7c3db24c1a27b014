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
    for svc in ("webserver", "daemon", "user_code", "celery_worker"):
        assert services[svc]["environment"] == env  # one anchor, identical everywhere


def test_celery_broker_and_workers():
    """Redis as the celery executor's broker and backend, and workers that run steps exactly as
    the user-code server would: same image, environment and volumes."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    redis, worker, user_code = services["redis"], services["celery_worker"], services["user_code"]
    assert redis["image"] == "redis:7"
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]
    assert "ports" not in redis  # on the compose network only

    env = user_code["environment"]
    assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert env["CELERY_BACKEND_URL"] == "redis://redis:6379/1"

    assert worker["build"] == user_code["build"] == "."
    assert worker["environment"] == env
    assert worker["volumes"] == user_code["volumes"]  # the dump, and the storage step outputs go through
    assert any(v.startswith("dagster-storage:") for v in worker["volumes"]) and "dagster-storage" in compose["volumes"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert worker["depends_on"]["schema"] == {"condition": "service_completed_successfully"}
    assert user_code["depends_on"]["redis"] == {"condition": "service_healthy"}  # runs submit steps to it

    command = worker["command"]
    assert command[:3] == ["dagster-celery", "worker", "start"]
    assert command[command.index("-A") + 1] == "dagster_celery.app"
    assert command[command.index("--") + 1:] == ["--concurrency=1"]
    config_path = command[command.index("-y") + 1]
    # The image puts docker/celery.yaml at the path the workers read, and it names the same
    # broker and backend as the environment the runs' executor config reads.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"cp docker/celery.yaml {config_path}" in dockerfile
    assert "COPY docker ./docker" in dockerfile and "pip install --no-cache-dir -e ." in dockerfile
    from dagster_celery.cli import get_validated_config

    config = get_validated_config(str(ROOT / "docker" / "celery.yaml"))  # the executor's own schema
    assert (config["broker"], config["backend"]) == (env["CELERY_BROKER_URL"], env["CELERY_BACKEND_URL"])


def test_workers_dependencies_are_installed_with_the_project():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\s*"dagster-celery==0\.29\.27",', text, re.M)
    assert re.search(r'^\s*"redis>=', text, re.M)


def test_local_scripts_export_the_same_names():
    text = (ROOT / "scripts" / "env.sh").read_text()
    exported = set(re.findall(r"export ([A-Z_]+)=", text))
    assert code_env_names() <= exported
    assert {"CELERY_BROKER_URL", "CELERY_BACKEND_URL"} <= exported
