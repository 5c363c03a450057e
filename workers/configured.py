"""Can `alertq worker <channel>` run? One line saying why not, or None. Used by the command (to refuse
with a clear error) and by `alertq up` (to start workers only for channels that can deliver)."""

from __future__ import annotations

from pydantic import SecretStr

from schemas.settings import Settings


def problem(settings: Settings, channel: str) -> str | None:
    known = list(type(settings.channels).model_fields)
    if channel not in known:
        return f"unknown channel {channel!r}; channels: {', '.join(known)}"
    config = settings.channels.get(channel)
    if not config.enabled:
        return f"channel {channel!r} is disabled (channels.{channel}.enabled = false)"
    url = getattr(config, "url", False)
    extra_urls = getattr(config, "urls", None)
    if getattr(config, "bot_token", None) is not None:
        return None  # API mode: its settings checked themselves when they loaded
    if (url is None or (isinstance(url, SecretStr) and not url.get_secret_value())) and not extra_urls:
        env = f"ALERTQ_CHANNELS__{channel.upper()}__URL"
        return f"channel {channel!r} has no URL: set channels.{channel}.url (or {env})"
    return None
