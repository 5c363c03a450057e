"""Reading the files under deploy/ the way their tools would: environment variables, the commands they
run, health checks, YAML documents. Used by tests/test_deploy_files.py to keep those files honest."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from schemas.settings import ChannelsSettings, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
CONTAINER = DEPLOY / "container"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = CONTAINER / "compose.yaml"
DOCKERFILE = CONTAINER / "Dockerfile"
INSTALLED_ALERTQ = "/opt/alertq/bin/alertq"
CHANNELS = list(ChannelsSettings.model_fields)

# Files whose ALERTQ_… names must all be settings: every deploy file and the operations guide.
# deploy/local is the test suite's broker helper, not a deployment.
NAMED_IN = sorted(
    [p for p in DEPLOY.rglob("*") if p.is_file() and p.relative_to(DEPLOY).parts[0] != "local"]
    + [REPO / "docs" / "operations.md"]
)
ENV_NAME = re.compile(r"\bALERTQ_[A-Z][A-Z0-9_]*")
# Not a setting but read beside them: the path of the TOML file (schemas.settings.config_file).
NOT_SETTINGS = {"ALERTQ_CONFIG"}
INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def setting_path(name: str) -> tuple[str, ...] | None:
    """The settings field an `ALERTQ_<SECTION>__<FIELD>` variable sets, or None if there is none.
    Walks the models as pydantic-settings does (prefix `ALERTQ_`, nested with `__`, case-insensitive)
    and accepts only a path that ends on a value, not on a section."""
    if not name.startswith("ALERTQ_"):
        return None
    parts = tuple(name[len("ALERTQ_") :].lower().split("__"))
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return parts if i == len(parts) - 1 else None
    return None


def names_in(path: Path) -> set[str]:
    return set(ENV_NAME.findall(path.read_text(errors="replace")))


@dataclass(frozen=True)
class Assignment:
    """One `NAME=value` a deploy file gives (commented-out examples count: people uncomment them)."""

    source: str
    name: str
    value: str


def env_file_assignments(path: Path, commented: bool = True) -> Iterator[Assignment]:
    for line in path.read_text().splitlines():
        match = re.match(r"^#?\s*(ALERTQ_[A-Z0-9_]+)=(.*)$", line.strip())
        if match and (commented or not line.startswith("#")):
            yield Assignment(path.name, match.group(1), match.group(2))


def unit_assignments(path: Path) -> Iterator[Assignment]:
    for line in path.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line[len("Environment=") :].partition("=")
            yield Assignment(path.name, name, value)


def dockerfile_assignments() -> Iterator[Assignment]:
    for name, value in re.findall(r"\b(ALERTQ_[A-Z0-9_]+)=(\S+)", DOCKERFILE.read_text()):
        yield Assignment("Dockerfile", name, value)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def compose_assignments() -> Iterator[Assignment]:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("ALERTQ_"):
                yield Assignment(f"compose:{name}", key, str(value))


def interpolated(value: str) -> str:
    """A compose `${VAR:-default}` replaced as compose would with VAR unset and required ones given."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(0)[2:-1]
        if ":-" in inner:
            return inner.split(":-", 1)[1]
        return "secret"

    return INTERPOLATION.sub(one, value)


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_yaml_documents(path)
    ]


def kubernetes_environment() -> dict[str, str]:
    """What every pod gets through envFrom: ConfigMap alertq-config and Secret alertq-secrets."""
    env: dict[str, str] = {}
    for _, doc in kubernetes_documents():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "alertq-config":
            env.update({k: str(v) for k, v in doc["data"].items()})
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == "alertq-secrets":
            env.update({k: str(v) for k, v in doc["stringData"].items()})
    return env


@dataclass(frozen=True)
class Command:
    """An alertq command line a deploy file runs, without the program name."""

    source: str
    argv: tuple[str, ...]


def commands() -> list[Command]:
    found: list[Command] = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line[len("ExecStart=") :])
                assert argv[0] == INSTALLED_ALERTQ, f"{unit.name} runs {argv[0]}, not {INSTALLED_ALERTQ}"
                instances = CHANNELS if "%i" in line else [""]
                for instance in instances:
                    label = unit.name.replace("@", f"@{instance}") if instance else unit.name
                    found.append(Command(f"systemd:{label}", tuple(a.replace("%i", instance) for a in argv[1:])))
    for name, service in compose()["services"].items():
        if str(service.get("image", "")).startswith("alertq:"):
            found.append(Command(f"compose:{name}", tuple(service["command"])))
    for file, doc in kubernetes_documents():
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                found.append(Command(f"kubernetes:{file}:{doc['metadata']['name']}", tuple(container["args"])))
    return found


def compose_healthcheck(service: str) -> list[str]:
    test: list[str] = compose()["services"][service]["healthcheck"]["test"]
    return test
