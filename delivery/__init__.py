"""Talking to endpoints: what an attempt came to (`outcomes`) and the one HTTP client (`http`, `http_wire`)."""
