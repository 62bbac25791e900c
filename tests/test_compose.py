"""docker-compose.yml, Dockerfile and requirements.lock: what a typo would break, checked without an engine.

`docker-compose config` (Debian's docker-compose 1.29; no engine needed) parses and interpolates the
file; the tests then read the result the way the containers will: images pinned, healthchecks, the
order of start-up, the variables each service needs (named as Settings names them, and valid), ports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.crypto import new_key_entry
from core.settings import Settings
from tests.conftest import needed

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "s3cretpassw0rd",
    "WEBHOOKS_API_KEYS": "acme:key_acme_0123456789",
    "WEBHOOKS_ENCRYPTION_KEYS": new_key_entry("k1"),
    "WEBHOOKS_OPERATOR_KEY": "op_0123456789abcdef",
}
LONG_RUNNING = {"postgres", "temporal", "temporal-ui", "worker", "api"}
ONE_SHOT = {"temporal-schema", "temporal-setup", "migrate"}
OURS = {"temporal-setup", "migrate", "worker", "api"}
TRACING = {"otel-collector", "jaeger"}  # the `tracing` profile's, started only with it


def _docker_compose() -> str:
    return str(needed(shutil.which("docker-compose"), "docker-compose", "apt-get install docker-compose"))


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOKS_", "POSTGRES_", "TEMPORAL_"))}
    empty_env_file = ROOT / "test-output" / "empty.env"  # a developer's .env must not change the answer
    empty_env_file.parent.mkdir(exist_ok=True)
    empty_env_file.write_text("")
    return subprocess.run(
        [_docker_compose(), "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["services"]
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_secrets_are_required_variables(missing: str) -> None:
    result = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert uses, name
        assert all(use.startswith(":?") for use in uses), (name, uses)  # required, no default
    for key, value in re.findall(r"^\s*(\w*(?:PASSWORD|PWD|KEYS?))\s*:\s*(.+)$", text, re.M):
        assert value.startswith("${"), (key, value)  # every secret-looking value is a variable


def test_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT | TRACING
    for name, service in services.items():
        assert service.get("profiles", []) == (["tracing"] if name in TRACING else []), name


def test_images_are_pinned_and_ours_are_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in OURS:
            assert Path(service["build"]["context"]).resolve() == ROOT, name
            assert service["image"] == services["api"]["image"], name  # one image, built once
            continue
        assert "build" not in service, name
        repository, _, tag = service["image"].partition(":")
        assert re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9]+)?", tag), (name, service["image"])
        assert repository in {
            "postgres",
            "temporalio/admin-tools",
            "temporalio/server",
            "temporalio/ui",
            "otel/opentelemetry-collector",
            "jaegertracing/all-in-one",
        }
    assert services["temporal"]["image"].split(":")[1] == services["temporal-schema"]["image"].split(":")[1]
    assert services["postgres"]["image"].startswith("postgres:16.")


def test_start_up_order(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    healthy, done = "service_healthy", "service_completed_successfully"
    assert conditions("postgres") == {}
    assert conditions("temporal-schema") == {"postgres": healthy}
    assert conditions("temporal") == {"temporal-schema": done}
    assert conditions("temporal-setup") == {"temporal": healthy}
    assert conditions("temporal-ui") == {"temporal-setup": done}
    # The store's schema is made or upgraded once, before anything that uses it starts.
    assert conditions("migrate") == {"postgres": healthy}
    for name in ("worker", "api"):
        assert conditions(name) == {"migrate": done, "temporal-setup": done}
    # A condition on a service's health needs that service to have a healthcheck.
    for name in services:
        for dep, condition in conditions(name).items():
            if condition == healthy:
                assert "test" in services[dep].get("healthcheck", {}), dep
    for name in ONE_SHOT:
        assert services[name].get("restart", "no") == "no", name


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    def probe(name: str) -> str:
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        return " ".join(check["test"][1:])

    assert "pg_isready" in probe("postgres") and "-d webhooks" in probe("postgres")
    assert "7233" in probe("temporal")
    metrics_port = _env(services["worker"])["WEBHOOKS_WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{metrics_port}/metrics" in probe("worker")
    assert "http://127.0.0.1:8000/healthz" in probe("api")
    # The image's own healthcheck is the API's; the one-shot job turns it off.
    for name in ("temporal-setup", "migrate"):
        assert services[name]["healthcheck"]["test"] == ["NONE"], name


def test_scale_out_needs_no_change(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale worker=3`: no fixed name, no host port on the worker."""
    for name, service in services.items():
        assert "container_name" not in service, name
    assert "ports" not in services["worker"]
    assert services["worker"]["command"] == ["python", "-m", "worker"]
    assert services["api"]["command"][:3] == ["python", "-m", "api"]  # api/__main__.py, not bare uvicorn


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    def published(name: str) -> list[tuple[str | None, int, int]]:
        found: list[tuple[str | None, int, int]] = []
        for port in services[name]["ports"]:
            if isinstance(port, dict):  # docker-compose writes a mapping without a host IP this way
                found.append((port.get("host_ip"), int(port["published"]), int(port["target"])))
            else:  # and one with a host IP as "ip:published:target/tcp"
                ip, host_port, target = port.removesuffix("/tcp").rsplit(":", 2)
                found.append((ip, int(host_port), int(target)))
        return found

    assert published("api") == [(None, 8000, 8000)]
    api_command = services["api"]["command"]
    assert api_command[api_command.index("--port") + 1] == "8000"
    assert api_command[api_command.index("--host") + 1] == "0.0.0.0"
    # Temporal and its UI (which has no login) are published on this host's loopback only.
    assert published("temporal") == [("127.0.0.1", 7233, 7233)]
    assert published("temporal-ui") == [("127.0.0.1", 8080, 8080)]
    assert "ports" not in services["postgres"]


def test_our_services_environment_is_valid_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in OURS:
        # OpenTelemetry's standard variables are read by core/tracing.py and the SDK, not by Settings.
        env = {k: v for k, v in _env(services[name]).items() if not k.startswith("OTEL_")}
        unknown = [k for k in env if k.removeprefix("WEBHOOKS_").lower() not in Settings.model_fields]
        assert unknown == [], (name, unknown)  # a misspelt variable would be silently ignored
        fields: dict[str, Any] = {k.removeprefix("WEBHOOKS_").lower(): v for k, v in env.items()}
        settings = Settings(**fields)
        assert settings.temporal_target == "temporal:7233"
        assert settings.log_format == "json"
        database = urlsplit(settings.sqlalchemy_url)
        assert database.scheme == "postgresql+psycopg"
        assert (database.hostname, database.port, database.path) == ("postgres", 5432, "/webhooks")
        assert database.username == _env(services["postgres"])["POSTGRES_USER"]
        assert database.password == SECRETS["POSTGRES_PASSWORD"]
        assert env["WEBHOOKS_DATA_DIR"] == "/data"
    api = _env(services["api"])
    assert Settings(api_keys=api["WEBHOOKS_API_KEYS"]).tenants_by_key == {"key_acme_0123456789": "acme"}
    worker = _env(services["worker"])
    assert worker["WEBHOOKS_WORKER_METRICS_HOST"] == "0.0.0.0"  # reachable by Prometheus in the network
    assert services["worker"]["expose"] == [worker["WEBHOOKS_WORKER_METRICS_PORT"]]
    # The API and the workers sign and publish with one JWT key: the shared volume holds it.
    for name in ("api", "worker"):
        assert any(v.startswith("webhooks-data:/data") for v in services[name]["volumes"]), name
    assert services["temporal-setup"]["command"][:3] == ["python", "-m", "bootstrap"]
    assert services["migrate"]["command"] == ["python", "-m", "cli.migrate"]
    assert (ROOT / "bootstrap.py").exists()


def test_temporal_services_agree(services: dict[str, dict[str, Any]]) -> None:
    postgres, schema, server = (_env(services[n]) for n in ("postgres", "temporal-schema", "temporal"))
    assert schema["POSTGRES_SEEDS"] == server["POSTGRES_SEEDS"] == "postgres"
    assert schema["POSTGRES_USER"] == server["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert schema["SQL_PASSWORD"] == server["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert server["DB"] == "postgres12"
    assert (server["DBNAME"], server["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")
    ui = _env(services["temporal-ui"])
    assert ui["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert ui["TEMPORAL_DEFAULT_NAMESPACE"] == _env(services["api"])["WEBHOOKS_TEMPORAL_NAMESPACE"]
    # Files mounted from the repository exist, and the schema script is valid shell that names both
    # databases.
    for name in ("temporal-schema", "temporal"):
        for volume in services[name]["volumes"]:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            assert Path(source).is_file(), (name, source)
    script = ROOT / "deploy" / "temporal" / "setup-schema.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert "temporal:temporal" in text and "temporal_visibility:visibility" in text
    assert server["DYNAMIC_CONFIG_FILE_PATH"] == "config/dynamicconfig/webhooks.yaml"
    assert server["NUM_HISTORY_SHARDS"] == "4"  # the image's default, made visible (and settable)
    dynamic = yaml.safe_load((ROOT / "deploy" / "temporal" / "dynamicconfig.yaml").read_text())
    assert dynamic["frontend.enableUpdateWorkflowExecution"] == [{"value": True}]
    # Each tenant its share of dispatch (domain/fairness.py), as make run's dev server has it.
    assert dynamic["matching.enableFairness"] == [{"value": True}]


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    [base] = re.findall(r"^FROM (\S+)", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base)
    [user] = re.findall(r"^USER (\S+)", text, re.M)
    assert user not in {"root", "0"}
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    assert re.search(r'^CMD \["python", "-m", "api", ', text, re.M)  # api/__main__.py, not bare uvicorn
    assert "pip install --no-deps -r requirements.lock" in text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = set(re.findall(r"^COPY (\S+) ", text, re.M))
    for package in pyproject["tool"]["setuptools"]["packages"]:
        top = package.split(".")[0]
        assert top in copied, top  # a package left out of the image breaks it at import
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        assert f"{module}.py" in copied


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".data", ".env", ".git", "test-output"} <= ignored


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_lock_pins_every_runtime_dependency() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["postgres"]}
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, line
            pins[_name(name)] = version
    assert wanted <= set(pins), wanted - set(pins)
    assert pins["temporalio"] == "1.35.0"


def test_the_tracing_profile_takes_our_spans_and_shows_them(services: dict[str, dict[str, Any]]) -> None:
    """`OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318 docker compose --profile tracing up`: the
    API and the workers export to the collector, which passes the spans on to Jaeger's UI."""
    for name in ("api", "worker"):
        env = _env(services[name])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""  # off unless asked for
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    traced = compose_config({**SECRETS, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318"})
    assert traced.returncode == 0, traced.stderr
    traced_api = yaml.safe_load(traced.stdout)["services"]["api"]
    assert _env(traced_api)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"

    collector = services["otel-collector"]
    assert {"4317", "4318"} <= set(collector["expose"])
    config_mount = collector["volumes"][0]
    config_file = config_mount["source"] if isinstance(config_mount, dict) else config_mount.split(":")[0]
    assert collector["command"] == ["--config=/etc/otelcol/webhooks.yaml"]
    pipeline = yaml.safe_load((ROOT / "deploy/otel/collector.yaml").read_text())
    assert Path(config_file).resolve() == (ROOT / "deploy/otel/collector.yaml").resolve()
    assert pipeline["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert pipeline["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    traces = pipeline["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["otlp/jaeger"]
    assert pipeline["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    jaeger = services["jaeger"]
    assert "4317" in jaeger["expose"]
    assert (
        jaeger["ports"] == ["127.0.0.1:16686:16686/tcp"] or jaeger["ports"][0].get("host_ip") == "127.0.0.1"
    )
