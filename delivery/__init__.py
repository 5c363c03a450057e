"""Talking to endpoints: what an attempt came to (`outcomes`), the one HTTP client (`http`, `http_wire`)
and the chat API clients (`chat/`)."""
