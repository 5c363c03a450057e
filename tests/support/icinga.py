"""A real Icinga 2 for end-to-end tests: own config, own certificates, own port, own temp dir.

`Icinga2Core` writes a minimal Icinga 2 configuration (one ApiListener on a free port of 127.0.0.1,
one ApiUser, hosts and services with passive checks only: `dummy` with active checks off) into a temp
dir of its own, issues a throwaway CA and the node's certificate there (what `icinga2 pki` / `api setup`
would put in DataDir/certs), and runs Debian's `icinga2 daemon` in the foreground on it, every path
constant (DataDir, LogDir, CacheDir, SpoolDir, InitRunDir, PidPath, StatePath, …) pointed into that
dir with `-D`, so /etc/icinga2, /var/lib/icinga2 and the system's service are never touched. When the
tests run as root the daemon runs as Debian's `nagios` account (via setpriv), as the current user
otherwise. Tests set states through the API (`process-check-result`) and read them back from it;
the API is verified against the throwaway CA (TLS verification stays on).

    core = Icinga2Core(workdir_parent).start()
    core.set_service_state("web01", "disk", 2, "DISK CRITICAL")
    core.service("web01", "disk")["acknowledgement"]  # 0, 1 (normal) or 2 (sticky)
    core.stop()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import trustme

ICINGA2_BINARY = "icinga2"
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
CORE_USER = "nagios"  # Debian's icinga2 package runs as this account too
NODE_NAME = "localhost"  # the certificate's CN; Icinga 2 wants an Endpoint of that name
API_USER = "alertq"
API_PASSWORD = "icinga-api-pass-3141"


class Icinga2Error(Exception):
    """The daemon would not start, or a wait ran out; the message carries the tail of its output."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Icinga2Core:
    parent: Path
    hosts: Mapping[str, Sequence[str]] = field(default_factory=lambda: {"web01": ["disk"]})
    start_timeout: float = 60.0
    # Icinga 2 DSL added inside every Host object (e.g. `vars.alertq_channels = [ "mattermost" ]`), and
    # after all objects (e.g. `include "…/deploy/icinga2/alertq.conf"`, users, the notification feature).
    host_attributes: str = ""
    extra_config: str = ""

    workdir: Path = field(init=False)
    port: int = field(init=False, default=0)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="icinga2-", dir=self.parent))
        self.workdir.chmod(0o755)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "data" / "certs" / "ca.crt"

    @property
    def output_file(self) -> Path:
        return self.workdir / "icinga2.out"

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> Icinga2Core:
        self.port = free_port()
        self._write_files()
        binary = shutil.which(ICINGA2_BINARY, path=SEARCH_PATH)
        assert binary is not None
        argv = [*self._as_core_user(), binary, "daemon", "-c", str(self.workdir / "icinga2.conf"), *self._defines()]
        with self.output_file.open("wb") as output:
            self._process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(self._api_answers, timeout=self.start_timeout, what="the API to answer")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the API, as a user would call it ------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        timeout = kwargs.pop("timeout", 10)
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        return requests.request(
            method,
            self.url + path,
            timeout=timeout,
            auth=(API_USER, API_PASSWORD),
            verify=str(self.ca_file),
            headers=headers,
            **kwargs,
        )

    def set_service_state(self, host: str, service: str, state: int, output: str) -> None:
        response = self.api(
            "POST",
            "/v1/actions/process-check-result",
            json={"type": "Service", "service": f"{host}!{service}", "exit_status": state, "plugin_output": output},
        )
        response.raise_for_status()
        self.wait_for(lambda: self.service(host, service)["state"] == state, what=f"{host}!{service} in state {state}")

    def service(self, host: str, service: str) -> dict[str, Any]:
        """The service's attributes the tests look at: state, acknowledgement, last_check_result."""
        # filter_vars only in a body: a POST that the API treats as GET (its documented override).
        response = self.api(
            "POST",
            "/v1/objects/services",
            headers={"X-HTTP-Method-Override": "GET"},
            json={
                "filter": "host.name==h && service.name==s",
                "filter_vars": {"h": host, "s": service},
                "attrs": ["state", "acknowledgement", "last_check_result"],
            },
        )
        response.raise_for_status()
        [result] = response.json()["results"]
        attrs: dict[str, Any] = result["attrs"]
        return attrs

    def comments(self, host: str, service: str) -> list[dict[str, Any]]:
        """The service's comments (an acknowledgement leaves one, entry_type 4, with its author)."""
        return self._of_service("comment", host, service)

    def downtimes(self, host: str, service: str) -> list[dict[str, Any]]:
        """The service's scheduled downtimes (a Snooze makes one)."""
        return self._of_service("downtime", host, service)

    def _of_service(self, kind: str, host: str, service: str) -> list[dict[str, Any]]:
        """The attributes of the service's objects of this type (comment, downtime)."""
        response = self.api(
            "POST",
            f"/v1/objects/{kind}s",
            headers={"X-HTTP-Method-Override": "GET"},
            json={
                "filter": f"{kind}.host_name==h && {kind}.service_name==s",
                "filter_vars": {"h": host, "s": service},
            },
        )
        response.raise_for_status()
        return [result["attrs"] for result in response.json()["results"]]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60.0, what: str = "a condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise Icinga2Error(f"icinga2 exited with {self._process.returncode}:\n{self.output_tail()}")
            with contextlib.suppress(requests.RequestException, KeyError, ValueError):
                value = predicate()
                if value:
                    return value
            time.sleep(0.1)
        raise Icinga2Error(f"timed out after {timeout}s waiting for {what}:\n{self.output_tail()}")

    def output_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.output_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"

    # -- internals ------------------------------------------------------------------------------------

    def _api_answers(self) -> bool:
        return self.api("GET", "/v1/status/IcingaApplication", timeout=2).status_code == 200

    def as_core_user(self) -> list[str]:
        """The argv prefix that runs a program as the daemon's user (empty when that is us)."""
        return self._as_core_user()

    @property
    def core_user(self) -> str:
        return CORE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _as_core_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["setpriv", f"--reuid={CORE_USER}", f"--regid={CORE_USER}", "--init-groups", "--"]

    def _defines(self) -> list[str]:
        """Every path Icinga 2 would otherwise take from its packaged defaults, inside the workdir."""
        w = self.workdir
        paths = {
            "DataDir": w / "data",
            "LogDir": w / "log",
            "CacheDir": w / "cache",
            "SpoolDir": w / "spool",
            "InitRunDir": w / "run",
            "PidPath": w / "run" / "icinga2.pid",
            "StatePath": w / "data" / "icinga2.state",
            "ObjectsPath": w / "cache" / "icinga2.debug",
            "VarsPath": w / "cache" / "icinga2.vars",
            "PkiDir": w / "data" / "certs",
        }
        return [f"-DNodeName={NODE_NAME}", *(f"-D{name}={path}" for name, path in paths.items())]

    def _write_files(self) -> None:
        for sub in ("data/certs", "log", "cache", "spool", "run"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        # What `icinga2 api setup` would leave in DataDir/certs: a CA and this node's certificate (CN = NodeName).
        ca = trustme.CA()
        node = ca.issue_cert(NODE_NAME, "127.0.0.1", common_name=NODE_NAME)
        certs = self.workdir / "data" / "certs"
        ca.cert_pem.write_to_path(str(certs / "ca.crt"))
        node.cert_chain_pems[0].write_to_path(str(certs / f"{NODE_NAME}.crt"))
        node.private_key_pem.write_to_path(str(certs / f"{NODE_NAME}.key"))
        (self.workdir / "icinga2.conf").write_text(self._config())
        if os.geteuid() == 0:
            account = pwd.getpwnam(CORE_USER)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)

    def _config(self) -> str:
        objects = [
            "include <itl>",
            f'object Endpoint "{NODE_NAME}" {{ }}',
            f'object Zone "master" {{ endpoints = [ "{NODE_NAME}" ] }}',
            f'object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {self.port} }}',
            f'object ApiUser "{API_USER}" {{ password = "{API_PASSWORD}"; permissions = [ "*" ] }}',
        ]
        for host, services in self.hosts.items():
            objects.append(
                f'object Host "{host}" {{ check_command = "dummy"; enable_active_checks = false\n'
                f"{self.host_attributes}\n}}"
            )
            for service in services:
                objects.append(
                    f'object Service "{service}" {{ host_name = "{host}"; check_command = "dummy";'
                    " enable_active_checks = false; max_check_attempts = 1 }"
                )
        if self.extra_config:
            objects.append(self.extra_config)
        return "\n".join(objects) + "\n"
