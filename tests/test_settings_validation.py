"""Settings that could only fail later are refused when they load, one line per problem, never showing
a secret: signing secrets that are empty or short, URLs of the wrong scheme or shape, CA bundles that
are no CA bundles. Checked as an operator meets them (`alertq config check`, `alertq ack-listener`)
and on the settings model the processes load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.fields import MIN_SECRET_LENGTH
from schemas.settings import Settings, mask_url
from tests.conftest import run
from tests.support.rabbit import free_port
from tests.support.tls import local_ca

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with no alertq settings but an empty config file: only what a test adds counts.
    No broker: nothing here gets that far."""
    (tmp_path / "alertq.toml").write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    return {
        **clean,
        "PATH": f"{VENV_BIN}{os.pathsep}{clean.get('PATH', '')}",
        "ALERTQ_CONFIG": str(tmp_path / "alertq.toml"),
    }


def config_check(env: dict[str, str], **settings: str) -> subprocess.CompletedProcess[str]:
    return run(["alertq", "config", "check"], {**env, **settings})


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr.strip().splitlines()


# ---- signing secrets (issue 11, item 3) ----------------------------------------------------------------

SECRETS = {
    "ALERTQ_ACK__SIGNING_SECRET": "ack.signing_secret",
    "ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET": "ack_listener.slack_signing_secret",
    "ALERTQ_CHANNELS__WEBHOOK__SIGNING_SECRET": "channels.webhook.signing_secret",
    "ALERTQ_SINK__SLACK_SIGNING_SECRET": "sink.slack_signing_secret",
}
SHORT = "shortbutsecret31charactersxyzab"
assert len(SHORT) == MIN_SECRET_LENGTH - 1


@pytest.mark.parametrize("value", ["", SHORT], ids=["empty", "31-characters"])
@pytest.mark.parametrize("variable", list(SECRETS))
def test_config_check_refuses_an_empty_or_short_signing_secret_in_one_line(
    env: dict[str, str], variable: str, value: str
) -> None:
    [line] = error_lines(config_check(env, **{variable: value}))
    assert line.startswith(f"Error: invalid settings: {SECRETS[variable]}: ")
    assert f"at least {MIN_SECRET_LENGTH} characters" in line or f"shorter than {MIN_SECRET_LENGTH} characters" in line
    assert ("empty" in line) == (value == "")
    assert SHORT not in line


def test_config_check_names_every_bad_secret_on_a_line_of_its_own(env: dict[str, str]) -> None:
    lines = error_lines(config_check(env, **dict.fromkeys(SECRETS, "")))
    assert sorted(line.split(": ")[2] for line in lines) == sorted(SECRETS.values())


def test_signing_secrets_of_32_characters_or_none_are_accepted(env: dict[str, str]) -> None:
    good = "0123456789abcdef0123456789abcdef"
    result = config_check(env, **dict.fromkeys(SECRETS, good))
    assert result.returncode == 0, result.stderr
    assert good not in result.stdout + result.stderr
    assert config_check(env).returncode == 0  # all unset: optional, as before


@pytest.mark.parametrize("variable", ["ALERTQ_ACK__SIGNING_SECRET", "ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET"])
def test_the_ack_listener_refuses_to_start_with_an_empty_secret(env: dict[str, str], variable: str) -> None:
    listener_env = {
        **env,
        "ALERTQ_ACK__SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
        "ALERTQ_ACK_LISTENER__PORT": str(free_port()),
        variable: "",
    }
    try:
        result = run(["alertq", "ack-listener"], listener_env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the ack listener started with {variable} empty")
    [line] = error_lines(result)
    assert line.startswith(f"Error: invalid settings: {SECRETS[variable]}: is set but empty")


def test_the_settings_model_refuses_short_secrets_without_repeating_them() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate({"ack": {"signing_secret": SHORT}, "channels": {"webhook": {"signing_secret": ""}}})
    assert {".".join(map(str, e["loc"])): e["type"] for e in refused.value.errors()} == {
        "ack.signing_secret": "secret_too_short",
        "channels.webhook.signing_secret": "secret_empty",
    }
    assert SHORT not in str(refused.value)
    fine = Settings.model_validate({"ack": {"signing_secret": SHORT + "x"}})
    assert fine.ack.signing_secret is not None and fine.ack.signing_secret.get_secret_value() == SHORT + "x"


# ---- URL schemes and shapes (issue 11, item 7) ---------------------------------------------------------

# (variable, value, the setting named in the error, a part of the value that must not be shown)
BAD_URLS = [
    ("ALERTQ_BROKER__URLS", "amqp://u:pw-s3cr3t@h:notaport/", "broker.urls.0", "pw-s3cr3t"),
    ("ALERTQ_BROKER__URLS", "amqp://u:pw-s3cr3t@h:70000/", "broker.urls.0", "pw-s3cr3t"),
    ("ALERTQ_BROKER__URLS", "http://u:pw-s3cr3t@mq1:5672/", "broker.urls.0", "pw-s3cr3t"),
    ("ALERTQ_BROKER__URLS", "amqp://mq1/,amqp://u:pw-s3cr3t@/vhost", "broker.urls.1", "pw-s3cr3t"),
    ("ALERTQ_BROKER__URLS", "mq1.example.org:5672", "broker.urls.0", "mq1.example.org"),
    ("ALERTQ_BROKER__URLS", ",", "broker.urls", None),
    ("ALERTQ_STATE_STORE", "mysql://alertq:pw-s3cr3t@db/alertq", "state_store", "pw-s3cr3t"),
    ("ALERTQ_STATE_STORE", "sqlite://host-s3cr3t/alertq.db", "state_store", "host-s3cr3t"),
    ("ALERTQ_STATE_STORE", "sqlite:///", "state_store", None),
    ("ALERTQ_STATE_STORE", "postgresql://alertq:pw-s3cr3t@db:port/alertq", "state_store", "pw-s3cr3t"),
    ("ALERTQ_CHANNELS__MATTERMOST__URL", "1nmqus1wsfr988e81sr8whqrte", "channels.mattermost.url", "1nmqus1wsfr988e81"),
    ("ALERTQ_CHANNELS__MATTERMOST__URL", "/hooks/1nmqus1wsfr988e81", "channels.mattermost.url", "1nmqus1wsfr988e81"),
    ("ALERTQ_CHANNELS__SLACK__URL", "hooks.slack.com/services/T0/B0/k3y-s3cr3t", "channels.slack.url", "k3y-s3cr3t"),
    ("ALERTQ_CHANNELS__SLACK__URL", "https://hooks.slack.com/services/T0/B0/k3y-s3cr3t\n", "channels.slack.url", "k3y"),
    ("ALERTQ_CHANNELS__WEBHOOK__URL", "ftp://sms.example.org/k3y-s3cr3t", "channels.webhook.url", "k3y-s3cr3t"),
    ("ALERTQ_CHANNELS__WEBHOOK__URLS", '{"sms-team": "https:///k3y-s3cr3t"}', "channels.webhook.urls.sms-team", "k3y"),
    ("ALERTQ_CHANNELS__SLACK__HTTP__PROXY", "notaurl", "channels.slack.http.proxy", "notaurl"),
    (
        "ALERTQ_CHANNELS__EMAIL__HTTP__PROXY",
        "socks5://u:pw-s3cr3t@proxy:1080",
        "channels.email.http.proxy",
        "pw-s3cr3t",
    ),
    (
        "ALERTQ_CHANNELS__MATTERMOST__ACK_URL",
        "alertq.example.org/mattermost/actions",
        "channels.mattermost.ack_url",
        "alertq.example.org/mattermost",
    ),
    ("ALERTQ_CHANNELS__MATTERMOST__UI_BASE_URL", "javascript:alert(1)", "channels.mattermost.ui_base_url", "alert(1)"),
    ("ALERTQ_ACK_TARGET__URL", "oitc.internal.lan", "ack_target.url", "oitc.internal.lan"),
    ("ALERTQ_SINK__SLACK_ACTIONS_URL", "http://:8090/slack/actions", "sink.slack_actions_url", "8090/slack"),
]


@pytest.mark.parametrize(
    ("variable", "value", "setting", "hidden"), BAD_URLS, ids=[f"{b[2]}={b[1]!r}" for b in BAD_URLS]
)
def test_config_check_refuses_a_url_of_the_wrong_scheme_or_shape_in_one_line(
    env: dict[str, str], variable: str, value: str, setting: str, hidden: str | None
) -> None:
    [line] = error_lines(config_check(env, **{variable: value}))
    assert line.startswith(f"Error: invalid settings: {setting}: "), line
    assert "expected " in line
    assert hidden is None or hidden not in line


GOOD_URLS = {
    "ALERTQ_BROKER__URLS": "amqps://alertq:pw@mq1.example.org:5671/alertq,amqp://[::1]/,amqp://mq2",
    "ALERTQ_STATE_STORE": "postgresql:///alertq?host=/run/postgresql",
    "ALERTQ_CHANNELS__MATTERMOST__URL": "https://mm.example.org/hooks/1nmqus1wsfr988e81sr8whqrte",
    "ALERTQ_CHANNELS__MATTERMOST__HTTP__PROXY": "http://u:pw@proxy.example.org:3128",
    "ALERTQ_CHANNELS__MATTERMOST__ACK_URL": "https://alertq.example.org/mattermost/actions",
    "ALERTQ_CHANNELS__SLACK__URL": "",  # empty: not set, as before
    "ALERTQ_CHANNELS__WEBHOOK__URLS": '{"sms-team": "http://127.0.0.1:9000/in"}',
    "ALERTQ_ACK_TARGET__URL": "https://icinga.example.org:5665",
}


def test_urls_of_the_right_shapes_are_accepted_and_shown_masked(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = config_check(env, **GOOD_URLS)
    assert result.returncode == 0, result.stderr
    assert "1nmqus1wsfr988e81sr8whqrte" not in result.stdout
    assert '"amqps://alertq:***@mq1.example.org:5671/alertq"' in result.stdout

    for key, value in {**env, **GOOD_URLS}.items():
        if key.startswith("ALERTQ_"):
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.channels.slack.url is None
    assert [mask_url(u.get_secret_value()) for u in settings.broker.urls][1:] == ["amqp://[::1]/", "amqp://mq2"]


@pytest.mark.parametrize(
    "sqlite",
    ["sqlite:///var/alertq.db", "sqlite:////var/lib/alertq/alertq.db", "sqlite:///state dir/alertq.db"],
)
def test_sqlite_state_stores_with_a_file_are_accepted(sqlite: str) -> None:
    assert Settings.model_validate({"state_store": sqlite}).state_store == sqlite


def test_url_errors_from_the_model_repeat_no_part_of_the_value() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(
            {
                "broker": {"urls": ["amqp://u:pw-s3cr3t@h:notaport/"]},
                "channels": {"mattermost": {"url": "k3y-s3cr3t"}, "slack": {"http": {"proxy": "pw-s3cr3t"}}},
                "state_store": "mysql://u:pw-s3cr3t@db/x",
            }
        )
    text = str(refused.value)
    assert "s3cr3t" not in text
    assert sorted(".".join(map(str, e["loc"])) for e in refused.value.errors()) == [
        "broker.urls.0",
        "channels.mattermost.url",
        "channels.slack.http.proxy",
        "state_store",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://u:pw@h:notaport/", "amqp://u:***@h:notaport/"),
        ("amqp://u:pw@[::1]:5672/v", "amqp://u:***@[::1]:5672/v"),
        ("amqp://u@h/", "amqp://u@h/"),
        ("http://u:pw@[::1", "***"),
    ],
)
def test_mask_url_never_fails_and_never_shows_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


# ---- CA bundles ----------------------------------------------------------------------------------------


def test_config_check_refuses_a_ca_bundle_that_is_missing_or_holds_no_certificates(
    env: dict[str, str], tmp_path: Path
) -> None:
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("hello\n")
    lines = error_lines(
        config_check(
            env,
            ALERTQ_CHANNELS__SLACK__HTTP__CA_BUNDLE=str(tmp_path / "missing.pem"),
            ALERTQ_ACK_TARGET__CA_BUNDLE=str(not_pem),
        )
    )
    assert lines == [
        f"Error: channels.slack.http.ca_bundle: {tmp_path / 'missing.pem'} is not a file",
        f"Error: ack_target.ca_bundle: {not_pem} holds no usable CA certificates (SSLError)",
    ]

    ca = local_ca(tmp_path).ca_file
    ok = config_check(env, ALERTQ_CHANNELS__SLACK__HTTP__CA_BUNDLE=str(ca), ALERTQ_CHANNELS__EMAIL__CA_BUNDLE=str(ca))
    assert ok.returncode == 0, ok.stderr


def test_a_bad_value_in_the_toml_file_is_named_the_same_way(env: dict[str, str]) -> None:
    Path(env["ALERTQ_CONFIG"]).write_text('[channels.mattermost]\nurl = "k3y-s3cr3t"\n[ack]\nsigning_secret = ""\n')
    lines = error_lines(config_check(env))
    assert [line.split(": ")[2] for line in lines] == ["channels.mattermost.url", "ack.signing_secret"]
    assert "k3y-s3cr3t" not in "".join(lines)


# ---- chat API mode (issue 13) -------------------------------------------------------------------------

API_MODE = [
    (
        {"ALERTQ_CHANNELS__MATTERMOST__BOT_TOKEN": "mm-secret-token-1"},
        "channels.mattermost: bot_token is set but api_url is not: API mode needs the server's URL",
    ),
    (
        {"ALERTQ_CHANNELS__MATTERMOST__API_URL": "https://mm.example.org"},
        "channels.mattermost: api_url is set but bot_token is not: API mode needs both (and channel)",
    ),
    (
        {
            "ALERTQ_CHANNELS__MATTERMOST__BOT_TOKEN": "mm-secret-token-1",
            "ALERTQ_CHANNELS__MATTERMOST__API_URL": "https://mm.example.org",
            "ALERTQ_CHANNELS__MATTERMOST__CHANNEL": "alerts",
        },
        "channels.mattermost: channel is not team/channel or @user, the forms API mode posts to",
    ),
    (
        {"ALERTQ_CHANNELS__SLACK__BOT_TOKEN": "xoxb-secret-token-1"},
        "channels.slack: bot_token is set but channel is not a channel id: API mode posts to C…",
    ),
    (
        {"ALERTQ_CHANNELS__SLACK__BOT_TOKEN": "xoxb-secret-token-1\n", "ALERTQ_CHANNELS__SLACK__CHANNEL": "C0ALERTS"},
        "channels.slack.bot_token: holds spaces or line breaks; "
        "expected the bot token alone (copied without a newline)",
    ),
    (
        {"ALERTQ_CONVERSATIONS__STORE": "mysql://db/alertq"},
        "conversations.store: is neither a sqlite:// nor a postgresql:// URL; expected sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db or postgresql://user:password@host/db",
    ),
]


@pytest.mark.parametrize(("settings", "line"), API_MODE)
def test_incomplete_api_mode_settings_are_one_clear_line_without_the_token(
    env: dict[str, str], settings: dict[str, str], line: str
) -> None:
    lines = error_lines(config_check(env, **settings))
    assert lines == [f"Error: invalid settings: {line}"]
    assert "secret-token" not in "\n".join(lines)


def test_complete_api_mode_settings_are_valid(env: dict[str, str]) -> None:
    result = config_check(
        env,
        ALERTQ_CHANNELS__MATTERMOST__BOT_TOKEN="mm-secret-token-1",
        ALERTQ_CHANNELS__MATTERMOST__API_URL="https://mm.example.org",
        ALERTQ_CHANNELS__MATTERMOST__CHANNEL="ops/alerts",
        ALERTQ_CHANNELS__SLACK__BOT_TOKEN="xoxb-secret-token-1",
        ALERTQ_CHANNELS__SLACK__CHANNEL="C0ALERTS",
        ALERTQ_CONVERSATIONS__STORE="postgresql://alertq@db.example.org/alertq",
    )
    assert result.returncode == 0, result.stderr
    assert "secret-token" not in result.stdout + result.stderr
