"""Static checks of docker-compose.yml, deploy/Dockerfile and .dockerignore.

The tests parse the files as YAML or text, so they need no Docker engine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

DATASTORES = ("mongo", "redis")
APP_SERVICES = ("identity", "session", "gateway")
ALL_SERVICES = DATASTORES + APP_SERVICES
BACKEND_SERVICES = ("mongo", "redis", "identity", "session")
APP_PORTS = {"identity": 8081, "session": 8082, "gateway": 8080}
INTERNAL_NETWORK = "backend"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    assert isinstance(document, dict), "docker-compose.yml is not a YAML mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs with continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, arguments = stripped.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment as a mapping, from list or map syntax."""
    environment = service.get("environment", {})
    if isinstance(environment, list):
        pairs = (entry.partition("=") for entry in environment)
        return {key: value for key, _, value in pairs}
    return {key: str(value) for key, value in environment.items()}


def networks_of(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks", ["default"])
    return set(networks)


def published_ports_of(service: dict[str, Any]) -> list[tuple[str, int]]:
    """Return (published, target) pairs from short or long port syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((str(entry.get("published", "")), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        published = parts[-2] if len(parts) > 1 else ""
        ports.append((published, int(parts[-1])))
    return ports


def depends_on_conditions(service: dict[str, Any]) -> dict[str, str]:
    """Return each dependency's condition, service_started for the list syntax."""
    depends_on = service.get("depends_on", {})
    if isinstance(depends_on, list):
        return {name: "service_started" for name in depends_on}
    return {
        name: options.get("condition", "service_started")
        for name, options in depends_on.items()
    }


def secret_names_of(service: dict[str, Any]) -> set[str]:
    names = set()
    for entry in service.get("secrets", []):
        names.add(entry["source"] if isinstance(entry, dict) else entry)
    return names


def test_compose_defines_the_five_services(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == set(ALL_SERVICES)


@pytest.mark.parametrize(
    ("name", "image"), [("mongo", "mongo:7"), ("redis", "redis:7")]
)
def test_datastore_uses_official_image(
    services: dict[str, dict[str, Any]], name: str, image: str
) -> None:
    assert services[name]["image"] == image


@pytest.mark.parametrize("name", DATASTORES)
def test_datastore_keeps_data_in_named_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], name: str
) -> None:
    sources = [str(volume).split(":")[0] for volume in services[name]["volumes"]]
    named = [source for source in sources if source in compose["volumes"]]

    assert named, f"{name} mounts no named volume: {sources}"


def test_redis_writes_append_only_file(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]

    assert "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_builds_from_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]

    assert build["context"] == "."
    assert build["dockerfile"] == "deploy/Dockerfile"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_its_module(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert services[name]["command"] == ["python", "-m", f"services.{name}"]


@pytest.mark.parametrize("name", BACKEND_SERVICES)
def test_only_gateway_publishes_a_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert published_ports_of(services[name]) == []


def test_gateway_publishes_port_8080(services: dict[str, dict[str, Any]]) -> None:
    assert published_ports_of(services["gateway"]) == [("8080", 8080)]


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_has_healthcheck(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    healthcheck = services[name].get("healthcheck", {})

    assert healthcheck.get("test"), f"{name} has no healthcheck test"
    assert healthcheck.get("disable") is not True


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_healthcheck_requests_readyz_with_urllib(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    command = " ".join(services[name]["healthcheck"]["test"])

    assert "urllib.request" in command
    assert f"http://127.0.0.1:{APP_PORTS[name]}/readyz" in command


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_restarts_unless_stopped(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert services[name]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", APP_SERVICES)
@pytest.mark.parametrize("dependency", DATASTORES)
def test_app_service_waits_for_healthy_datastore(
    services: dict[str, dict[str, Any]], name: str, dependency: str
) -> None:
    conditions = depends_on_conditions(services[name])

    assert conditions.get(dependency) == "service_healthy"


@pytest.mark.parametrize("dependency", ["identity", "session"])
def test_gateway_waits_for_healthy_backend(
    services: dict[str, dict[str, Any]], dependency: str
) -> None:
    conditions = depends_on_conditions(services["gateway"])

    assert conditions.get(dependency) == "service_healthy"


@pytest.mark.parametrize("name", BACKEND_SERVICES)
def test_backend_service_is_only_on_internal_network(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert networks_of(services[name]) == {INTERNAL_NETWORK}


def test_backend_network_is_internal(compose: dict[str, Any]) -> None:
    assert compose["networks"][INTERNAL_NETWORK]["internal"] is True


def test_gateway_joins_internal_and_external_network(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    networks = networks_of(services["gateway"])
    external = [
        network
        for network in networks - {INTERNAL_NETWORK}
        if not (compose["networks"].get(network) or {}).get("internal", False)
    ]

    assert INTERNAL_NETWORK in networks
    assert external, f"gateway has no network that can publish a port: {networks}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_in_production_mode(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert environment_of(services[name])["MFLIX_MODE"] == "production"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_uses_compose_datastores(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    environment = environment_of(services[name])

    assert environment["MONGODB_URL"] == "mongodb://mongo:27017/mflix"
    assert environment["REDIS_URL"] == "redis://redis:6379/0"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_listens_on_all_interfaces(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    environment = environment_of(services[name])
    prefix = f"MFLIX_{name.upper()}"

    assert environment[f"{prefix}_HOST"] == "0.0.0.0"
    assert environment[f"{prefix}_PORT"] == str(APP_PORTS[name])


def test_gateway_reaches_backends_by_service_name(
    services: dict[str, dict[str, Any]],
) -> None:
    environment = environment_of(services["gateway"])

    assert environment["MFLIX_GATEWAY_IDENTITY_URL"] == "http://identity:8081"
    assert environment["MFLIX_GATEWAY_SESSION_URL"] == "http://session:8082"


def test_gateway_public_url_is_overridable(
    services: dict[str, dict[str, Any]],
) -> None:
    public_url = environment_of(services["gateway"])["MFLIX_GATEWAY_PUBLIC_URL"]

    assert public_url.startswith("${MFLIX_GATEWAY_PUBLIC_URL:-http")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_reads_service_token_from_secret(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    environment = environment_of(services[name])

    assert "service_token" in secret_names_of(services[name])
    assert environment["MFLIX_SERVICE_TOKEN_FILE"] == "/run/secrets/service_token"
    assert "MFLIX_SERVICE_TOKEN" not in environment


def test_gateway_reads_secret_key_from_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    environment = environment_of(services["gateway"])

    assert "secret_key" in secret_names_of(services["gateway"])
    assert environment["MFLIX_GATEWAY_SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert "MFLIX_GATEWAY_SECRET_KEY" not in environment


@pytest.mark.parametrize(
    ("secret", "path"),
    [
        ("service_token", "./deploy/secrets/service_token"),
        ("secret_key", "./deploy/secrets/secret_key"),
    ],
)
def test_secret_is_read_from_file(
    compose: dict[str, Any], secret: str, path: str
) -> None:
    assert compose["secrets"][secret] == {"file": path}


def test_dockerfile_has_build_and_runtime_stages(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    stages = [args for keyword, args in dockerfile_instructions if keyword == "FROM"]

    assert len(stages) >= 2


def test_dockerfile_stages_use_python_311_slim(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    images = [
        args.split()[0]
        for keyword, args in dockerfile_instructions
        if keyword == "FROM"
    ]

    assert set(images) == {"python:3.11-slim"}


def test_dockerfile_runs_as_non_root_user(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    users = [args for keyword, args in dockerfile_instructions if keyword == "USER"]

    assert users, "the Dockerfile has no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_adds_nothing_from_url(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    remote_adds = [
        args
        for keyword, args in dockerfile_instructions
        if keyword == "ADD" and re.search(r"https?://", args)
    ]

    assert remote_adds == []


def test_dockerfile_runtime_copies_only_virtualenv(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    last_from = max(
        index
        for index, (keyword, _) in enumerate(dockerfile_instructions)
        if keyword == "FROM"
    )
    copies = [
        args
        for keyword, args in dockerfile_instructions[last_from:]
        if keyword in {"COPY", "ADD"}
    ]

    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_dockerfile_sets_unbuffered_output(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    environment = " ".join(
        args for keyword, args in dockerfile_instructions if keyword == "ENV"
    )

    assert "PYTHONUNBUFFERED=1" in environment


def test_dockerfile_starts_gateway_by_default(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    commands = [args for keyword, args in dockerfile_instructions if keyword == "CMD"]

    assert commands[-1] == '["python", "-m", "services.gateway"]'


@pytest.mark.parametrize(
    "pattern",
    [
        ".git",
        ".venv",
        ".tools",
        "var",
        "test-artifacts",
        "tests",
        "bench",
        ".pytest_cache",
        "deploy/secrets",
    ],
)
def test_dockerignore_excludes_local_files(pattern: str) -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert pattern in patterns
