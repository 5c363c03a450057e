"""The routing file: validation with line-and-field errors, policy matching, recipients."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.routing import RoutingConfig, RoutingError, load_routing, parse_duration
from tests.conftest import run
from tests.support.alert_events import alert_event

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "routing.example.toml"
CHANNELS = {"mattermost", "slack", "email", "webhook"}
# A Wednesday: 10:00 in Berlin is 09:00 UTC in winter.
WEDNESDAY_10_BERLIN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
WEDNESDAY_22_BERLIN = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)

BASE = """\
[contacts.alice]
email = "alice@example.com"
[contacts.alice.addresses]
mattermost = "@alice"

[groups.ops]
members = ["alice"]

[policies.db-team]
hosts = ["db-*"]

[[policies.db-team.steps]]
after = "5m"
notify = ["ops"]
channels = ["mattermost"]

[[policies.db-team.steps]]
after = "{after}"
notify = ["{target}"]
channels = ["{channel}"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text)
    return path


def filled(after: str = "10m", target: str = "alice", channel: str = "mattermost") -> str:
    return BASE.replace("{after}", after).replace("{target}", target).replace("{channel}", channel)


def base(tmp_path: Path, after: str = "10m", target: str = "alice", channel: str = "mattermost") -> Path:
    return write(tmp_path, filled(after, target, channel))


def event(kind: str = "service", notification_type: str = "PROBLEM", **overrides: Any) -> Any:
    return alert_event(notification_type, kind, "mattermost", **overrides)


def db_host(**extra: Any) -> dict[str, Any]:
    return {"host": {"id": "h1", "name": "h1", "display_name": "db-01"}, **extra}


def test_example_file_loads() -> None:
    config = load_routing(EXAMPLE, CHANNELS)
    assert list(config.policies) == ["db-team", "night-shift"]
    db_team = config.policies["db-team"]
    assert [s.after.total_seconds() for s in db_team.steps] == [300, 900]
    assert db_team.repeat == 3
    assert config.members(["alice", "dba"]) == ["alice", "bob", "carol"]


def test_valid_base_file(tmp_path: Path) -> None:
    config = load_routing(base(tmp_path), CHANNELS)
    assert config.policies["db-team"].steps[1].after.total_seconds() == 600


@pytest.mark.parametrize(
    ("value", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("1m5s", 65), (90, 90)]
)
def test_durations(value: Any, seconds: int) -> None:
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["", "5 minutes", "m", "1d", "-5m", "5m30"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_bad_duration_names_line_and_field(tmp_path: Path) -> None:
    path = base(tmp_path, after="5 minutes")
    with pytest.raises(RoutingError) as caught:
        load_routing(path, CHANNELS)
    assert str(caught.value) == (
        f"{path}:18: policies.db-team.steps[1].after: not a duration (like 30s, 5m, 1h30m): '5 minutes'"
    )


def test_unknown_contact_or_group(tmp_path: Path) -> None:
    path = base(tmp_path, target="mallory")
    with pytest.raises(RoutingError) as caught:
        load_routing(path, CHANNELS)
    assert str(caught.value) == f"{path}:19: policies.db-team.steps[1].notify[0]: no contact or group 'mallory'"


def test_unknown_channel(tmp_path: Path) -> None:
    path = base(tmp_path, channel="pigeon")
    with pytest.raises(RoutingError) as caught:
        load_routing(path, CHANNELS)
    assert str(caught.value) == f"{path}:20: policies.db-team.steps[1].channels[0]: no channel 'pigeon'"


def test_unknown_field(tmp_path: Path) -> None:
    path = write(tmp_path, filled().replace('email = "alice@example.com"', 'email = "a@b"\npagr = "1"'))
    with pytest.raises(RoutingError, match=r"routing\.toml:3: contacts\.alice\.pagr: Extra inputs are not permitted"):
        load_routing(path, CHANNELS)


def test_repeat_cap(tmp_path: Path) -> None:
    path = write(tmp_path, filled().replace('hosts = ["db-*"]', 'hosts = ["db-*"]\nrepeat = 1000'))
    with pytest.raises(RoutingError, match=r"routing\.toml:11: policies\.db-team\.repeat: .*less than or equal to 20"):
        load_routing(path, CHANNELS)


def test_group_named_like_a_contact(tmp_path: Path) -> None:
    path = write(tmp_path, filled().replace("[groups.ops]", "[groups.alice]").replace('["ops"]', '["alice"]'))
    with pytest.raises(RoutingError, match=r"routing\.toml:6: groups\.alice: a contact has the same name"):
        load_routing(path, CHANNELS)


def test_duplicate_table_is_a_toml_error(tmp_path: Path) -> None:
    path = write(tmp_path, filled() + '\n[contacts.alice]\nemail = "x@y"\n')
    with pytest.raises(RoutingError, match=r"routing\.toml:22: Cannot declare \('contacts', 'alice'\) twice$"):
        load_routing(path, CHANNELS)


def test_bad_period_and_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, 'timezone = "Mars/Olympus"\n' + filled())
    with pytest.raises(RoutingError, match=r"routing\.toml:1: timezone: unknown time zone 'Mars/Olympus'"):
        load_routing(path, CHANNELS)
    path = write(tmp_path, '[periods.day]\nmonday = ["18:00-08:00"]\n')
    with pytest.raises(RoutingError, match=r"routing\.toml:2: periods\.day\.monday\[0\]: .*ends before it starts"):
        load_routing(path, CHANNELS)
    path = write(tmp_path, '[contacts.a]\nperiod = "nights"\n')
    with pytest.raises(RoutingError, match=r"routing\.toml:2: contacts\.a\.period: no period 'nights'"):
        load_routing(path, CHANNELS)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match=r"routing\.toml:1: Invalid value: at end of file$"):
        load_routing(write(tmp_path, "contacts = [\n"), CHANNELS)
    with pytest.raises(RoutingError, match="cannot read"):
        load_routing(tmp_path / "missing.toml", CHANNELS)


@pytest.fixture(scope="module")
def example() -> RoutingConfig:
    return load_routing(EXAMPLE, CHANNELS)


def test_policy_by_globs(example: RoutingConfig) -> None:
    postgres = {"id": "s1", "name": "s1", "display_name": "PostgreSQL connections"}
    assert example.policy_for(event(**db_host(service=postgres))) is example.policies["db-team"]
    # Host glob matches, service glob does not.
    disk = {"id": "s1", "name": "s1", "display_name": "Disk /var"}
    assert example.policy_for(event(**db_host(service=disk))) is None
    # Service glob matches, host does not.
    assert example.policy_for(event(service=postgres)) is None
    # A host event never matches a policy with service globs.
    assert example.policy_for(event(kind="host", **db_host())) is None


def test_explicit_policy_wins(example: RoutingConfig) -> None:
    postgres = {"id": "s1", "name": "s1", "display_name": "PostgreSQL connections"}
    chosen = event(**db_host(service=postgres), escalation={"policy": "night-shift", "step": 0})
    assert example.policy_for(chosen) is example.policies["night-shift"]
    unknown = event(escalation={"policy": "no-such", "step": 0})
    assert example.policy_for(unknown) is None


def test_recipients_by_state_and_period(example: RoutingConfig) -> None:
    second = example.policies["db-team"].steps[1]  # alice + dba (bob, carol); mattermost + email
    critical = event(**db_host())  # service PROBLEM, state 2
    assert example.recipients(second, critical, WEDNESDAY_10_BERLIN) == [
        ("alice", "mattermost", "@alice"),
        ("alice", "email", "alice@example.com"),
        ("bob", "mattermost", "@bob"),
        ("bob", "email", "bob@example.com"),
        ("carol", "email", "carol@example.com"),
    ]
    # Outside bob's work hours (Berlin time), bob is left out.
    assert [r[0] for r in example.recipients(second, critical, WEDNESDAY_22_BERLIN)] == ["alice", "alice", "carol"]
    # Alice does not take service warnings.
    warning = event(**db_host(state=1))
    assert {r[0] for r in example.recipients(second, warning, WEDNESDAY_10_BERLIN)} == {"bob", "carol"}
    # Bob has host notifications off; alice takes host downs and recoveries.
    down = event(kind="host", **db_host())
    assert {r[0] for r in example.recipients(second, down, WEDNESDAY_10_BERLIN)} == {"alice", "carol"}
    recovery = event(kind="host", notification_type="RECOVERY", **db_host())
    assert {r[0] for r in example.recipients(second, recovery, WEDNESDAY_10_BERLIN)} == {"alice", "carol"}
    # Alice does not take flapping.
    flapping = event(notification_type="FLAPPINGSTART", **db_host())
    assert {r[0] for r in example.recipients(second, flapping, WEDNESDAY_10_BERLIN)} == {"bob", "carol"}


def test_period_boundaries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[periods.late]\nfriday = ["22:00-24:00"]\n'
        '[contacts.a]\nperiod = "late"\n[contacts.a.addresses]\nslack = "#a"\n'
        '[policies.p]\n[[policies.p.steps]]\nafter = "0s"\nnotify = ["a"]\nchannels = ["slack"]\n',
    )
    config = load_routing(path, CHANNELS)
    step = config.policies["p"].steps[0]
    friday = datetime(2026, 11, 27, tzinfo=UTC)
    assert config.recipients(step, event(), friday.replace(hour=21, minute=59)) == []
    assert config.recipients(step, event(), friday.replace(hour=22)) == [("a", "slack", "#a")]
    assert config.recipients(step, event(), friday.replace(hour=23, minute=59, second=59)) == [("a", "slack", "#a")]
    assert config.recipients(step, event(), friday.replace(day=28, hour=0)) == []


def test_config_check_validates_the_routing_file(alertq_env: dict[str, str], tmp_path: Path) -> None:
    env = {**alertq_env, "ALERTQ_ROUTING_FILE": str(EXAMPLE)}
    result = run(["alertq", "config", "check"], env)
    assert result.returncode == 0, result.stderr
    assert f"routing file {EXAMPLE} is valid: 3 contacts, 1 groups, 2 policies (db-team, night-shift)" in result.stderr

    env["ALERTQ_ROUTING_FILE"] = str(base(tmp_path, channel="pigeon"))
    result = run(["alertq", "config", "check"], env)
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert errors == [f"Error: {tmp_path}/routing.toml:20: policies.db-team.steps[1].channels[0]: no channel 'pigeon'"]


def test_config_check_masks_the_state_store_password(alertq_env: dict[str, str]) -> None:
    env = {**alertq_env, "ALERTQ_STATE_STORE": "postgresql://alertq:hunter2@db.example/alertq"}
    result = run(["alertq", "config", "check"], env)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert '"state_store": "postgresql://alertq:***@db.example/alertq"' in result.stdout
