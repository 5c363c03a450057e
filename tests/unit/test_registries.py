"""The explicit registries and the one answer to "is this channel configured?"."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from cores import TARGETS
from schemas.ack_listener import AckTargetSettings
from schemas.settings import ChannelsSettings, Settings
from workers.channels import NOTIFIERS, load_notifier
from workers.channels.base import ConfigurationError


def channels(**data: Any) -> ChannelsSettings:
    return Settings.model_validate({"channels": data}).channels


def test_every_channel_in_the_settings_has_a_notifier_and_no_other() -> None:
    assert list(NOTIFIERS) == list(ChannelsSettings.model_fields)
    for name, notifier in NOTIFIERS.items():
        assert notifier.name == name


def test_every_ack_target_kind_has_a_core_module() -> None:
    kinds = get_args(AckTargetSettings.model_fields["kind"].annotation)
    assert set(TARGETS) == set(kinds)


@pytest.mark.parametrize(
    ("data", "name", "problem"),
    [
        ({}, "pager", "unknown channel 'pager'; channels: mattermost, slack, email, webhook"),
        ({"webhook": {"enabled": False}}, "webhook", "channel 'webhook' is disabled"),
        ({}, "webhook", "channel 'webhook' has no URL: set channels.webhook.url"),
        ({"webhook": {"url": ""}}, "webhook", "channel 'webhook' has no URL"),
        ({}, "slack", "channel 'slack' has no URL"),
        ({"mattermost": {"url": "https://mm/hooks/k", "two_way": True}}, "mattermost", "channels.mattermost.ack_url"),
        ({"slack": {"url": "https://hooks/k", "two_way": True}}, "slack", "ack.signing_secret is not set"),
        ({"email": {"username": "u"}}, "email", "username and channels.email.password go together"),
        ({"email": {"sender": "Alertq <a@b>"}}, "email", "sender is not a plain e-mail address"),
    ],
)
def test_a_channel_that_cannot_deliver_says_why_in_one_line(data: dict[str, Any], name: str, problem: str) -> None:
    reason = channels(**data).problem(name)
    assert reason is not None and problem in reason and "\n" not in reason


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"webhook": {"url": "https://sms.example.org/in"}}, "webhook"),
        ({"webhook": {"urls": {"sms-team": "https://sms.example.org/team"}}}, "webhook"),
        ({}, "email"),  # the defaults deliver to the local MTA
        ({"mattermost": {"url": "https://mm/hooks/k"}}, "mattermost"),
    ],
)
def test_a_channel_that_can_deliver_has_no_problem(data: dict[str, Any], name: str) -> None:
    assert channels(**data).problem(name) is None


def test_the_notifier_refuses_the_settings_problem() -> None:
    with pytest.raises(ConfigurationError, match="has no URL"):
        load_notifier("slack", channels().slack)


def test_an_endpoint_of_the_operators_own() -> None:
    assert not channels().mattermost.has_endpoint()
    assert channels(mattermost={"url": "https://mm/hooks/k"}).mattermost.has_endpoint()
    assert not channels().email.has_endpoint(), "127.0.0.1:25 is the default, not a choice"
    assert channels(email={"port": 2525}).email.has_endpoint()
    # Named contacts' URLs leave every other event without an endpoint.
    assert not channels(webhook={"urls": {"team": "https://t.example.org"}}).webhook.has_endpoint()
