"""A real Nagios 4 core for end-to-end tests: own config, own temp dir, unprivileged, driven by commands.

`NagiosCore` writes a complete minimal Nagios 4 configuration into a temp dir of its own, starts
Debian's `nagios4` on it in the foreground (as user `nagios` when the tests run as root, as the
current user otherwise) and stops it at the end. Tests set host and service states deterministically
through the external command file (passive check results: active checks are off), read the core's
state back from status.dat, and watch the core's log.

Every contact's notification commands are the openITCOCKPIT module command lines with the module's
binary replaced by `alertq-enqueue --channel <channel> --config <toml>`, so what reaches the queue is
what a real core hands over: the core's own macro values, quoted by the core's own shell call.

    core = NagiosCore(workdir_parent, broker_url=amqp_url, hosts={"web01": ["disk"]})
    core.start()
    core.set_service_state("web01", "disk", 2, "DISK CRITICAL - / 1% free")
    core.wait_for_log("SERVICE NOTIFICATION: ")
    core.submit("ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;jdoe;on it")
    core.wait_for(lambda: core.status().service("web01", "disk")["problem_has_been_acknowledged"] == "1")
    core.stop()

The timing is shrunk for tests: `interval_length=1` makes every interval in the object config seconds,
status.dat is rewritten every second and the check result reaper runs every second. Nagios 4 handles
external commands on arrival (`command_check_interval` is deprecated there), so a passive result is
processed, and its notification command started, within a fraction of a second.

When the tests run as root the core runs as Debian's `nagios` account (via setpriv, which keeps the
clean environment given here); its temp dir under /tmp belongs to that account. If that account cannot
execute the virtualenv's interpreter (e.g. a pyenv Python under /root), the notification commands use
a small wrapper running the same `producer.enqueue:main` with the venv's packages on the system Python
of the same version; see `enqueue_program`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.nagios_config import (
    MATTERMOST,
    NotificationArgs,
    alertq_check_objects,
    alertq_toml,
    main_cfg,
    objects_cfg,
)
from tests.support.nagios_status import Status, parse_status

NAGIOS_BINARY = "nagios4"
# Where the core and its tools are looked up: /usr/sbin is not on every user's PATH.
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
CORE_USER = "nagios"  # Debian's nagios4-core account, used when the tests run as root
VENV_BIN = Path(sys.executable).parent

HOST_STATES = {"UP": 0, "DOWN": 1, "UNREACHABLE": 2}
SERVICE_STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


class NagiosError(Exception):
    """The core would not start, or a wait ran out; the message carries the tail of the core's log."""


@dataclass
class NagiosCore:
    """One Nagios 4 core on a config of its own; `start()` it, drive it, `stop()` it.

    hosts: host name -> its service descriptions (openITCOCKPIT uses UUIDs for both).
    broker_url, spool_dir: what the generated alertq TOML tells `alertq-enqueue` (the core's commands do
        not reliably see the test's environment, so the settings go in a file). spool_dir defaults to
        `<workdir>/spool`, which the core's user can write.
    channels: one `--channel` per entry on every notification command.
    args: the openITCOCKPIT argument set (MATTERMOST or SLACK) after the replaced binary.
    extra_args: appended to both commands, e.g. '--contact "$CONTACTNAME$" --notification-number
        "$NOTIFICATIONNUMBER$"'.
    host_directives, service_directives, contact_directives: override or add object directives, e.g.
        {"notification_interval": "5"} for re-notification every 5 s.
    extra_objects: raw object definitions appended to the object config (escalations, more contacts, …).
    alertq_checks: active service checks running `alertq --config <the core's alertq.toml> <args>` as
        the core's user: (host, service) -> args, e.g. {("web01", "alertq"): "status --nagios"}; the
        host must be in `hosts`. Run one with `submit("SCHEDULE_FORCED_SVC_CHECK;web01;alertq;<now>")`.
    main_directives: override or add nagios.cfg settings.
    """

    parent: Path
    broker_url: str
    hosts: Mapping[str, Sequence[str]] = field(default_factory=lambda: {"web01": ["disk"]})
    spool_dir: Path | None = None
    channels: Sequence[str] = ("mattermost",)
    args: NotificationArgs = MATTERMOST
    extra_args: str = ""
    host_directives: Mapping[str, str] = field(default_factory=dict)
    service_directives: Mapping[str, str] = field(default_factory=dict)
    contact_directives: Mapping[str, str] = field(default_factory=dict)
    extra_objects: str = ""
    alertq_checks: Mapping[tuple[str, str], str] = field(default_factory=dict)
    main_directives: Mapping[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0

    workdir: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # Not under pytest's tmp_path: that is private to the test runner's user, and the core runs as
        # another one. The whole dir belongs to the core's user; the runner (root or that user) can read it.
        self.parent.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="nagios-", dir=self.parent))
        self.workdir.chmod(0o755)
        if self.spool_dir is None:
            self.spool_dir = self.workdir / "spool"

    # -- paths a test may want ------------------------------------------------------------------------

    @property
    def main_cfg(self) -> Path:
        return self.workdir / "nagios.cfg"

    @property
    def command_file(self) -> Path:
        """The external command FIFO (`check_external_commands=1`); see `submit`."""
        return self.workdir / "rw" / "nagios.cmd"

    @property
    def log_file(self) -> Path:
        return self.workdir / "nagios.log"

    @property
    def status_file(self) -> Path:
        return self.workdir / "status.dat"

    @property
    def alertq_config(self) -> Path:
        return self.workdir / "alertq.toml"

    @property
    def user(self) -> str:
        """The account the core runs as: never root."""
        return CORE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> NagiosCore:
        """Write the config, check it with `nagios4 -v`, start the core and wait until it takes commands."""
        self._write_files()
        verify = subprocess.run(
            [*self._as_core_user(), NAGIOS_BINARY, "-v", str(self.main_cfg)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=60,
            check=False,
        )
        if verify.returncode != 0:
            problems = [ln for ln in verify.stdout.splitlines() if "Error" in ln or "Warning" in ln]
            raise NagiosError(f"nagios4 -v rejected {self.main_cfg}: {' | '.join(problems) or verify.stdout[-2000:]}")
        console = (self.workdir / "console.log").open("wb")
        self._process = subprocess.Popen(
            [*self._as_core_user(), NAGIOS_BINARY, str(self.main_cfg)],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=self.workdir,
            start_new_session=True,  # its own process group: teardown can reach its check workers
        )
        console.close()
        self.wait_for(self._accepting_commands, self.start_timeout, "the core to start and open its command file")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait (the core cleans up its command file and workers); SIGKILL the group if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NagiosCore:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- driving the core -----------------------------------------------------------------------------

    def submit(self, command: str) -> None:
        """Send one external command, e.g. 'ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;jdoe;on it'.

        The `[timestamp] ` prefix is added here. One write per command, well under PIPE_BUF, so
        concurrent writers never interleave."""
        if "\n" in command:
            raise ValueError("an external command is one line")
        if not self.running:
            raise NagiosError(f"the core is not running{self._log_tail()}")
        line = f"[{int(time.time())}] {command}\n".encode()
        fd = os.open(self.command_file, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def set_service_state(self, host: str, service: str, state: int | str, output: str) -> None:
        """A passive service check result; with max_check_attempts 1 the state is HARD at once."""
        code = _state_code(state, SERVICE_STATES)
        self.submit(f"PROCESS_SERVICE_CHECK_RESULT;{host};{service};{code};{_one_line(output)}")

    def set_host_state(self, host: str, state: int | str, output: str) -> None:
        """A passive host check result (HARD: passive_host_checks_are_soft=0)."""
        code = _state_code(state, HOST_STATES)
        self.submit(f"PROCESS_HOST_CHECK_RESULT;{host};{code};{_one_line(output)}")

    # -- reading the core's state ---------------------------------------------------------------------

    def status(self) -> Status:
        """status.dat as the core last wrote it (every `status_update_interval` second, atomically)."""
        return parse_status(self.status_file.read_text(errors="replace"))

    def log_lines(self) -> list[str]:
        if not self.log_file.exists():
            return []
        return self.log_file.read_text(errors="replace").splitlines()

    def notifications(self, kind: str = "SERVICE") -> list[list[str]]:
        """The core's own record of the notifications it sent: `[contact, host, (service,) state, command, output]`.

        kind is SERVICE or HOST; the fields are those of the log's `SERVICE NOTIFICATION: a;b;c` lines."""
        prefix = f"{kind} NOTIFICATION: "
        return [line.split(prefix, 1)[1].split(";") for line in self.log_lines() if prefix in line]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60.0, what: str = "a condition") -> Any:
        """Poll `predicate` until it returns something truthy (returned) or `timeout` runs out (NagiosError).

        Errors from the predicate count as "not yet" (status.dat may not exist yet, a block may be missing)."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                result = predicate()
            except (OSError, KeyError, IndexError, ValueError) as exc:
                last_error, result = exc, None
            if result:
                return result
            if self._process is not None and self._process.poll() is not None:
                raise NagiosError(f"the core exited ({self._process.returncode}) waiting for {what}{self._log_tail()}")
            if time.monotonic() >= deadline:
                hint = f" (last error: {last_error})" if last_error else ""
                raise NagiosError(f"timed out after {timeout:.0f}s waiting for {what}{hint}{self._log_tail()}")
            time.sleep(0.1)

    def wait_for_log(self, fragment: str | re.Pattern[str], timeout: float = 60.0, after: int = 0) -> str:
        """Wait for a log line containing `fragment` (or matching the pattern) among lines[after:]."""

        def matches(line: str) -> bool:
            return fragment.search(line) is not None if isinstance(fragment, re.Pattern) else fragment in line

        def find() -> str | None:
            return next((line for line in self.log_lines()[after:] if matches(line)), None)

        return str(self.wait_for(find, timeout, f"log line {fragment!r}"))

    def diagnostics(self) -> str:
        """What to print when an expected event did not come: the core's log tail and the spool.

        alertq-enqueue exits 0 when it keeps an event in the spool (broker unreachable), so the core
        logs nothing then; events left in the spool dir show it."""
        assert self.spool_dir is not None
        spooled = sorted(p.name for p in self.spool_dir.glob("*.json")) if self.spool_dir.exists() else []
        return f"{self._log_tail()}\n--- events left in {self.spool_dir}: {spooled or 'none'}"

    # -- internals ------------------------------------------------------------------------------------

    def _accepting_commands(self) -> bool:
        return self.command_file.is_fifo() and self.status_file.exists() and "programstatus" in self.status().blocks

    def _log_tail(self, lines: int = 25) -> str:
        tail = self.log_lines()[-lines:]
        console = self.workdir / "console.log"
        if console.exists():
            tail += [f"console: {ln}" for ln in console.read_text(errors="replace").splitlines()[-10:]]
        return "\n--- nagios log tail ---\n" + "\n".join(tail) if tail else ""

    def _alertq_checks(self) -> str:
        if not self.alertq_checks:
            return ""
        alertq = alertq_program(self.workdir / "bin", self._as_core_user(), self.user)
        prefix = f"{shlex.quote(alertq)} --config {shlex.quote(str(self.alertq_config))}"
        return alertq_check_objects(self.alertq_checks, prefix)

    def _as_core_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        # setpriv rather than runuser/su: no PAM session, no login shell, the environment passes untouched.
        return ["setpriv", f"--reuid={CORE_USER}", f"--regid={CORE_USER}", "--init-groups", "--"]

    def _env(self) -> dict[str, str]:
        # A clean environment, like an init system gives the core: nothing from the test runner
        # (no ALERTQ_* variables) reaches the notification commands.
        return {"PATH": SEARCH_PATH, "LANG": "C.UTF-8", "HOME": str(self.workdir)}

    def _write_files(self) -> None:
        for sub in ("rw", "checkresults", "tmp", "bin"):
            (self.workdir / sub).mkdir(exist_ok=True)
        assert self.spool_dir is not None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.alertq_config.write_text(alertq_toml(self.broker_url, self.spool_dir))
        enqueue = enqueue_program(self.workdir / "bin", self._as_core_user(), self.user)
        channels = [f"--channel {shlex.quote(channel)}" for channel in self.channels]
        prefix = " ".join([shlex.quote(enqueue), *channels, "--config", shlex.quote(str(self.alertq_config))])
        extra = f" {self.extra_args}" if self.extra_args else ""
        (self.workdir / "objects.cfg").write_text(
            objects_cfg(
                host_command=f"{prefix} {self.args.host}{extra}",
                service_command=f"{prefix} {self.args.service}{extra}",
                hosts=self.hosts,
                host_directives=self.host_directives,
                service_directives=self.service_directives,
                contact_directives=self.contact_directives,
            )
            + self.extra_objects
            + self._alertq_checks()
        )
        (self.workdir / "resource.cfg").write_text("$USER1$=/usr/lib/nagios/plugins\n")
        self.main_cfg.write_text(main_cfg(self.workdir, self.user, self.main_directives))
        if os.geteuid() == 0:
            account = pwd.getpwnam(CORE_USER)
            for path in [self.workdir, *self.workdir.rglob("*"), self.spool_dir]:
                os.chown(path, account.pw_uid, account.pw_gid)


def enqueue_program(bin_dir: Path, as_user: list[str], user: str) -> str:
    """The `alertq-enqueue` the core's user can run (see `venv_program`)."""
    return venv_program(bin_dir, as_user, user, "alertq-enqueue", "producer.enqueue", "usage: alertq-enqueue")


def alertq_program(bin_dir: Path, as_user: list[str], user: str) -> str:
    """The `alertq` command the core's user can run, e.g. for `alertq status --nagios` as a check."""
    return venv_program(bin_dir, as_user, user, "alertq", "alertq.cli", "Usage: alertq")


def venv_program(bin_dir: Path, as_user: list[str], user: str, name: str, module: str, usage: str) -> str:
    """The virtualenv's console script `name` (entry point `module:main`) as the core's user can run it:
    the venv's own when that user can execute its interpreter; otherwise a wrapper in bin_dir running
    the same entry point with the same packages on the system's Python of the same version (a venv
    made from e.g. pyenv under /root is unreachable). `usage` is what its --help prints first."""
    venv_script = VENV_BIN / name
    if _runs(as_user, venv_script, usage):
        return str(venv_script)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = next(
        (p for p in (f"/usr/bin/{version}", f"/usr/local/bin/{version}") if os.access(p, os.X_OK)), None
    )
    site_packages = next(Path(sys.prefix).glob(f"lib/{version}/site-packages"), None)
    if system_python is None or site_packages is None:
        raise NagiosError(f"user {user} cannot run {venv_script} and there is no /usr/bin/{version} to run it on")
    # site.addsitedir runs the venv's .pth files (the editable install of alertq); the venv's packages
    # go first so they win over any the system has. sys.argv[0] becomes the program's name, as the
    # console script has it (click prints it in usage lines).
    bootstrap = (
        "import site, sys; n = len(sys.path); site.addsitedir(sys.argv.pop(1)); "
        f"sys.path[:] = sys.path[n:] + sys.path[:n]; sys.argv[0] = {name!r}; "
        f"from {module} import main; sys.exit(main())"
    )
    wrapper = bin_dir / name
    wrapper.write_text(
        "#!/bin/sh\n"
        f"# {venv_script}, run on {system_python}: the core's user cannot execute the venv's interpreter.\n"
        f'exec {system_python} -s -c {shlex.quote(bootstrap)} {shlex.quote(str(site_packages))} "$@"\n'
    )
    wrapper.chmod(0o755)
    if not _runs(as_user, wrapper, usage):
        raise NagiosError(f"{wrapper} does not run as user {user}")
    return str(wrapper)


def _runs(as_user: list[str], program: Path, usage: str) -> bool:
    # Through /bin/sh with a clean PATH, as the core's workers run it: a direct exec from here can take
    # detours (PATH shims, execvp fallbacks) that the core's never does.
    argv = [*as_user, "/bin/sh", "-c", 'exec "$0" --help', str(program)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    result = subprocess.run(argv, capture_output=True, timeout=60, check=False, cwd="/", env=env)
    return result.returncode == 0 and usage.encode() in result.stdout


def _state_code(state: int | str, names: Mapping[str, int]) -> int:
    code = names.get(state.strip().upper(), -1) if isinstance(state, str) else state
    if code not in names.values():
        raise ValueError(f"{state!r} is not one of {dict(names)}")
    return code


def _one_line(output: str) -> str:
    # The core un-escapes a literal backslash-n in passive output into long output; a real newline
    # would end the command.
    if "\n" in output:
        raise ValueError("passive check output is one line (write \\n for long output)")
    return output
