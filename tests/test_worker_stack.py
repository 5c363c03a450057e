"""`alertq up` starts one `alertq worker <channel>` per channel that is enabled and can deliver."""

from __future__ import annotations

from alertq.stack import processes
from schemas.settings import Settings


def test_up_runs_a_worker_per_configured_channel_with_its_own_metrics_port() -> None:
    settings = Settings.model_validate(
        {
            "channels": {
                "webhook": {"url": "https://sms.example.org/in"},
                "mattermost": {"url": "https://mm.example.org/hooks/abc"},
                "slack": {"url": "https://hooks.slack.com/services/T/B/x", "enabled": False},
            },
            "worker": {"metrics_port": 9410},
        }
    )
    workers = {p.name: p.argv for p in processes(settings) if p.name.startswith("worker-")}
    # slack is disabled; email needs no URL; a channel without a URL would only crash-loop.
    assert workers == {
        "worker-mattermost": ["alertq", "worker", "mattermost", "--metrics-port", "9410"],
        "worker-email": ["alertq", "worker", "email", "--metrics-port", "9411"],
        "worker-webhook": ["alertq", "worker", "webhook", "--metrics-port", "9412"],
    }


def test_up_routes_channels_without_an_endpoint_to_the_sink_and_skips_disabled_ones() -> None:
    parts = {p.name: p for p in processes(Settings.model_validate({"channels": {"slack": {"enabled": False}}}))}
    assert set(parts) == {"relay", "worker-mattermost", "worker-email", "worker-webhook", "sink"}
    # The chats post to the sink's API emulation (a conversation per incident), the webhook to its hook.
    mattermost = parts["worker-mattermost"].env
    assert mattermost["ALERTQ_CHANNELS__MATTERMOST__API_URL"] == Settings().sink.public_url()
    assert mattermost["ALERTQ_CHANNELS__MATTERMOST__BOT_TOKEN"]
    assert "ALERTQ_CHANNELS__MATTERMOST__URL" not in mattermost
    assert parts["worker-webhook"].env["ALERTQ_CHANNELS__WEBHOOK__URL"].endswith("/hooks/webhook/local")
