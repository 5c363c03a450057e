"""An alert storm through a REAL Nagios 4 core into rate-limited chats (`make bench`, issue 14).

500 services on 50 hosts, each notifying 2 contacts with openITCOCKPIT's command line verbatim from
deploy/openitcockpit/README.md (only the binary's path differs), go CRITICAL at once; later all RECOVER.
`alertq relay` carries the spool to the broker, one `alertq worker` posts to `alertq sink`'s chat API
emulation, limited as the chat limits it. Per phase it prints:

- seconds from the core's last notification command (its log line, polled) until every problem is
  visible in the channel as a reader sees it (its line in a post; after the recoveries, each line
  marked recovered or its own post saying RECOVERED);
- the chat calls that phase made and how many the chat refused with 429: posts (new messages, in the
  channel or a thread: what floods a channel, and what Slack's 1/s limit counts) apart from edits
  (chat.update, a budget of its own). The issue's "at most 20 posts" is read as posts.

Runs: Slack API at 1 post/s per channel, burst 5, the worker's budget set to the chat's own numbers
(1/s, burst 5), folding on; the same with folding off (`fold.enabled = false`) on fewer services, the
500-service figure extrapolated linearly (one post a second is the pace, and printed as such);
Mattermost API at 10/s, burst 100.

`ALERTQ_BENCH_STORM_RUNS` picks runs by name (comma-separated: slack, baseline, webhook, mattermost;
default all), e.g. to iterate on one while tuning.

The storm runs on a RabbitMQ node of its own (`private_node`): a thousand notifications at once are
not for the broker other tests share.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN
from tests.perf import bench
from tests.support.conversations import api_env, root_text, roots, summary
from tests.support.deploy_files import DEPLOY
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import BACKUP_CONTACT, NotificationArgs
from tests.support.rabbit import PrivateNode
from tests.support.sink import Sink, sinks
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.perf, pytest.mark.nagios, pytest.mark.timeout(3600)]

SERVICES = 500
HOSTS = 50
BASELINE_SERVICES = 50
TARGET_SECONDS = 5.0
TARGET_POSTS = 20
NAME = re.compile(r"svc-(\d{4})-end")
COMMAND_LINE = re.compile(r"^/opt/alertq/bin/alertq-enqueue --channel (\S+) (.*)$", re.M)


SLACK_SINK = {  # Slack: about 1 chat.postMessage a second per channel, short bursts (5 back to back)
    "slack__post_rate_limit__requests": "1",
    "slack__post_rate_limit__seconds": "1",
    "slack__post_rate_limit__max_burst": "4",
}
SLACK_WORKER = {  # the worker told the chat's own numbers
    "ALERTQ_CHANNELS__SLACK__API_POST_RATE_LIMIT__PER_SECOND": "1",
    "ALERTQ_CHANNELS__SLACK__API_POST_RATE_LIMIT__BURST": "5",
}
MATTERMOST_SINK = {  # Mattermost's defaults: 10 calls a second, bursts of 100
    "mattermost__rate_limit__requests": "10",
    "mattermost__rate_limit__seconds": "1",
    "mattermost__rate_limit__max_burst": "99",
}


def documented_commands(channel: str) -> NotificationArgs:
    """The openITCOCKPIT command lines of deploy/openitcockpit/README.md, after `--channel <channel>`."""
    found = {
        ("service" if "--type Service" in args else "host"): args
        for name, args in COMMAND_LINE.findall((DEPLOY / "openitcockpit" / "README.md").read_text())
        if name == channel
    }
    return NotificationArgs(found["host"], found["service"])


def service_name(n: int) -> str:
    return f"svc-{n:04d}-end"


def host_of(n: int) -> str:
    return f"host{n % HOSTS:02d}"


@dataclass
class Phase:
    seconds: float  # from the exit of the core's last notification command until all visible
    from_launch: float  # from the core's log line of its last notification until all visible
    handoff: float  # from the first check result submitted until the core's last notification command exited
    posts: int  # messages posted into the channel or a thread (roots, replies): what a reader scrolls through
    edits: int  # messages changed (chat.update, PATCH)
    refused: int  # 429s
    calls: Counter[str]


@dataclass
class Run:
    label: str
    services: int
    problems: Phase
    recoveries: Phase


def notification_count(core: NagiosCore, state: str) -> int:
    """The core's SERVICE NOTIFICATION log lines with this state (OK for a RECOVERY)."""
    text = core.log_file.read_text(errors="replace") if core.log_file.exists() else ""
    return sum(1 for line in text.splitlines() if "SERVICE NOTIFICATION: " in line and f";{state};" in line)


def commands_running(core: NagiosCore) -> int:
    """The core's notification commands still running (their argv names the core's alertq.toml)."""
    marker = str(core.alertq_config).encode()
    running = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                running += marker in (proc / "cmdline").read_bytes()
            except OSError:
                continue
    return running


def wait_until(check: Callable[[], bool], what: str, timeout: float, pause: float = 0.05) -> float:
    """Poll until `check()`; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(pause)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


def visible(sink: Sink, chat: str) -> tuple[set[int], set[int]]:
    """(services whose problem shows in the channel, services shown recovered), as a reader sees the
    root posts: digests (a line per problem, marked once recovered) and lone roots."""
    shown: set[int] = set()
    recovered: set[int] = set()
    for message in roots(sink, chat):
        text = root_text(message)
        lone = "problems on" not in text and "problem on" not in text
        for line in text.splitlines():
            numbers = {int(n) for n in NAME.findall(line)}
            shown |= numbers
            if "recovered after" in line:
                recovered |= numbers
        if lone and "RECOVERED" in text:
            recovered |= {int(n) for n in NAME.findall(text)}
    return shown, recovered


def webhook_visible(sink: Sink, chat: str, after: int) -> set[int]:
    """Webhook mode: the services named in the channel's posts since message `after`."""
    shown: set[int] = set()
    for message in sink.messages():
        if message["channel"] == chat and not message.get("api") and int(message["id"]) > after:
            shown |= {int(n) for n in NAME.findall(root_text(message))}
    return shown


def last_message(sink: Sink) -> int:
    return max((int(m["id"]) for m in sink.messages()), default=0)


def phase_calls(sink: Sink, chat: str, after: int) -> tuple[int, int, int, Counter[str]]:
    """(posts, edits, 429s, calls by kind) of the chat's calls since call `after`."""
    calls = sink.calls(chat)[after:]
    kinds = Counter(summary(c) for c in calls if 200 <= int(c["status"]) < 300)
    posted = {"chat.postMessage root", "chat.postMessage reply", "POST /posts root", "POST /posts reply"}
    edited = {"chat.update", "PUT /posts/{id}/patch"}
    posts = sum(n for kind, n in kinds.items() if kind in posted)
    edits = sum(n for kind, n in kinds.items() if kind in edited)
    return posts, edits, sum(1 for c in calls if int(c["status"]) == 429), kinds


@contextmanager
def relay(env: dict[str, str], spool: Path, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(
            ["alertq", "relay"], env={**env, "ALERTQ_SPOOL__DIR": str(spool)}, stdout=out, stderr=out
        )
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


def storm(
    chat: str,
    services: int,
    sink: Sink,
    worker_env: dict[str, str],
    core_factory: Callable[..., NagiosCore],
    alertq_env: dict[str, str],
    tmp_path: Path,
    label: str,
    webhook: bool = False,
) -> Run:
    hosts: dict[str, list[str]] = {}
    for n in range(services):
        hosts.setdefault(host_of(n), []).append(service_name(n))
    core = core_factory(
        hosts=hosts,
        channels=(chat,),
        args=documented_commands(chat),
        extra_objects=BACKUP_CONTACT,
        service_directives={"contacts": "oncall,backup"},
        # The core starts all 2 x 500 commands at once; on this 2-core machine the last ones take longer
        # than the core's default notification_timeout (60 s), and the core kills them (measured: 207
        # of 1,000 notifications lost). That is the hand-off's speed (the enqueue), not the storm's.
        main_directives={"notification_timeout": "900"},
    )
    assert core.spool_dir is not None
    slug = re.sub(r"\W+", "-", label)
    worker = WorkerProcess(worker_env, tmp_path / f"worker-{slug}.log", channel=chat)
    try:
        with relay(bench.deployed(alertq_env), core.spool_dir, tmp_path / f"relay-{slug}.log"):
            worker.started()
            phases = []
            for kind, state, output in (
                ("CRITICAL", "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)"),
                ("RECOVERY", "OK", "DISK OK - free space: / 5120 MB (42%)"),
            ):
                before = len(sink.calls(chat))
                first_message = last_message(sink)
                started = time.monotonic()
                for n in range(services):
                    core.set_service_state(host_of(n), service_name(n), state, output)
                launched = wait_until(
                    lambda s=state: notification_count(core, s) >= 2 * services,  # type: ignore[misc]
                    f"{2 * services} {kind} notifications in the core's log",
                    600,
                )
                last = wait_until(lambda: commands_running(core) == 0, "the core's commands to exit", 600, 0.1)

                def all_seen(k: str = kind, after: int = first_message) -> bool:
                    if webhook:
                        return len(webhook_visible(sink, chat, after)) >= services
                    shown, recovered = visible(sink, chat)
                    return len(recovered if k == "RECOVERY" else shown) >= services

                seen = wait_until(all_seen, f"every {kind} in the channel", 1200, pause=0.2)
                time.sleep(1.0)  # the calls of the phase's tail
                posts, edits, refused, kinds = phase_calls(sink, chat, before)
                if webhook:
                    posts = sum(1 for m in sink.messages() if m["channel"] == chat and int(m["id"]) > first_message)
                phases.append(Phase(seen - last, seen - launched, last - started, posts, edits, refused, kinds))
    finally:
        worker.stop_quietly()
        core.cleanup()
    return Run(label, services, phases[0], phases[1])


def show(run: Run, scale: float = 1.0) -> str:
    note = f" (x{scale:g}, extrapolated from {run.services} services)" if scale != 1 else ""
    out = []
    for name, phase in (("CRITICAL", run.problems), ("RECOVERY", run.recoveries)):
        out.append(
            f"  {run.label:<24} {name:<8} all visible {phase.seconds * scale:6.1f} s after the core's last "
            f"command exited ({phase.from_launch * scale:6.1f} s after its log line), "
            f"{phase.posts * scale:4.0f} posts, {phase.edits * scale:4.0f} edits, {phase.refused} x 429{note}; "
            f"the core's commands took "
            f"{phase.handoff:.1f} s; calls {dict(phase.calls)}"
        )
    return "\n".join(out)


def bench_env(node: PrivateNode, tmp_path: Path) -> dict[str, str]:
    """As the `alertq_env` fixture, on the private node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ALERTQ_BROKER__URLS=node.url,
        ALERTQ_SPOOL__DIR=str(tmp_path / "spool"),
        ALERTQ_LOG__FORMAT="json",
        ALERTQ_LOG__LEVEL="info",
        ALERTQ_CONFIG=str(tmp_path / "alertq.toml"),
        ALERTQ_STATE_STORE=f"sqlite:///{tmp_path}/alertq.db",
    )
    (tmp_path / "alertq.toml").write_text("# the bench's settings come from the environment\n")
    return env


def test_a_storm_through_a_real_nagios_core_into_rate_limited_chats(private_node: PrivateNode, tmp_path: Path) -> None:
    alertq_env = bench_env(private_node, tmp_path)

    def nagios_core_factory(**options: object) -> NagiosCore:
        return NagiosCore(Path(tempfile.gettempdir()), private_node.url, **options).start()  # type: ignore[arg-type]

    env = bench.deployed(alertq_env)
    chosen = {name.strip() for name in os.environ.get("ALERTQ_BENCH_STORM_RUNS", "").split(",") if name.strip()}
    wanted = chosen or {"slack", "baseline", "webhook", "mattermost"}
    runs: dict[str, Run] = {}
    if "slack" in wanted:
        with sinks(tmp_path) as start:
            sink = start(**SLACK_SINK, max_messages="100000", max_calls="100000")
            slack = api_env(env, sink, "slack", f"sqlite:///{tmp_path}/folded.db", two_way=False, **SLACK_WORKER)
            runs["slack"] = storm(
                "slack", SERVICES, sink, slack, nagios_core_factory, alertq_env, tmp_path, "Slack 1/s, folding on"
            )
    if "baseline" in wanted:
        with sinks(tmp_path) as start:
            sink = start(**SLACK_SINK, max_messages="100000", max_calls="100000")
            unfolded = api_env(
                env,
                sink,
                "slack",
                f"sqlite:///{tmp_path}/unfolded.db",
                two_way=False,
                **SLACK_WORKER,
                ALERTQ_CHANNELS__SLACK__FOLD__ENABLED="false",
            )
            runs["baseline"] = storm(
                "slack", BASELINE_SERVICES, sink, unfolded, nagios_core_factory, alertq_env, tmp_path, "Slack 1/s, off"
            )
    if "webhook" in wanted:
        with sinks(tmp_path) as start:
            sink = start(max_messages="100000", max_calls="100000")
            webhook = {
                **env,
                "ALERTQ_CHANNELS__SLACK__URL": f"{sink.url}/hooks/slack/storm",
                "ALERTQ_CHANNELS__SLACK__RATE_LIMIT__PER_SECOND": "1",  # Slack's webhooks: about 1 a second
                "ALERTQ_CHANNELS__SLACK__RATE_LIMIT__BURST": "5",
                "ALERTQ_CONVERSATIONS__STORE": f"sqlite:///{tmp_path}/webhook.db",
            }
            runs["webhook"] = storm(
                "slack", SERVICES, sink, webhook, nagios_core_factory, alertq_env, tmp_path, "Slack webhook 1/s", True
            )
    if "mattermost" in wanted:
        with sinks(tmp_path) as start:
            sink = start(**MATTERMOST_SINK, max_messages="100000", max_calls="100000")
            mattermost = api_env(env, sink, "mattermost", f"sqlite:///{tmp_path}/mm.db", two_way=False)
            runs["mattermost"] = storm(
                "mattermost", SERVICES, sink, mattermost, nagios_core_factory, alertq_env, tmp_path, "Mattermost 10/s"
            )

    scale = SERVICES / BASELINE_SERVICES
    print(f"\n== alert storm: {SERVICES} services x 2 contacts through a real Nagios 4 core (openITCOCKPIT lines)")
    for name, run in runs.items():
        print(show(run, scale if name == "baseline" else 1.0))
    targets = f"targets: <= {TARGET_SECONDS:g} s, <= {TARGET_POSTS} posts, 0 x 429"
    if "slack" in runs and "baseline" in runs:
        folded, baseline = runs["slack"], runs["baseline"]
        for name, a, b in (
            ("CRITICAL", folded.problems, baseline.problems),
            ("RECOVERY", folded.recoveries, baseline.recoveries),
        ):
            # Polled every 0.2 s: a phase all visible when the commands exited counts as 0.2 s.
            ratio = (b.seconds * scale) / max(a.seconds, 0.2)
            bound = ">= " if a.seconds < 0.2 else ""
            print(f"  {name}: folding off / on = {bound}{ratio:.0f}x (time until all visible after the last command)")
    print(f"  {targets}")
    for label, run in runs.items():
        if label == "baseline":
            continue
        for name, phase in (("CRITICAL", run.problems), ("RECOVERY", run.recoveries)):
            posts = "meets" if phase.posts <= TARGET_POSTS else "MISSES"
            late = "meets" if phase.seconds <= TARGET_SECONDS else "MISSES"
            print(
                f"  {run.label} {name}: {phase.seconds:.1f} s {late} the time target, {phase.posts} posts "
                f"{posts} the posts target, {phase.edits} edits (the core's commands took {phase.handoff:.0f} s)"
            )
    for label, run in runs.items():
        if label != "baseline":
            for phase in (run.problems, run.recoveries):
                assert phase.refused == 0, f"{run.label}: {targets}"
