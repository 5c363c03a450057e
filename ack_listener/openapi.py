"""The listener's OpenAPI description, served at /openapi.json. Written by hand; tests/test_ack_listener.py
checks that every route the app serves is described here and nothing else."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "description": "Refused; nothing was queued.",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
        }
    },
}

_REFUSALS: dict[str, Any] = {
    "400": {**_ERROR, "description": "Malformed request, or a user name that names nobody; nothing was queued."},
    "401": {
        **_ERROR,
        "description": "Bad, tampered, re-encoded, expired or retired (v1) token (or Slack signature); nothing was "
        "queued.",
    },
    "403": {**_ERROR, "description": "The chat user is not in ack_listener.allowed_users; nothing was queued."},
    "413": {**_ERROR, "description": "Body larger than ack_listener.body_limit; nothing was queued."},
    "503": {
        **_ERROR,
        "description": "The broker did not confirm, the state store failed, or a needed secret is not set; nothing "
        "was queued.",
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "alertq ack listener",
        "version": "1",
        "description": "Takes button clicks (Acknowledge, Snooze, Recheck now, Unacknowledge; the action is in "
        "the signed token) from Mattermost and Slack and queues an `alertq.ack/1` (Acknowledge) or "
        "`alertq.ack/2` message on exchange `alertq.acks` once the broker confirmed it; the ack forwarder "
        "tells the chat once the core shows the action applied.",
    },
    "paths": {
        "/mattermost/actions": {
            "post": {
                "summary": "A Mattermost interactive button click or message menu choice",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user_name", "context"],
                                "properties": {
                                    "user_name": {"type": "string"},
                                    "channel_name": {"type": "string"},
                                    "post_id": {"type": "string"},
                                    "context": {
                                        "type": "object",
                                        "description": "A button: token. A digest's menu (action ackitem): the "
                                        "chosen option's token, which Mattermost adds as selected_option.",
                                        "properties": {
                                            "token": {"type": "string", "description": "signed"},
                                            "action": {"type": "string"},
                                            "selected_option": {"type": "string", "description": "signed"},
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Queued; the update replaces the post and removes its buttons. Or nothing "
                        "queued, said in ephemeral_text: already acknowledged (the update shows by whom), the "
                        "button is for an earlier problem, or the problem has recovered.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "update": {
                                            "type": "object",
                                            "properties": {"message": {"type": "string"}, "props": {"type": "object"}},
                                        },
                                        "ephemeral_text": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    **_REFUSALS,
                },
            }
        },
        "/slack/actions": {
            "post": {
                "summary": "A Slack block_actions interaction (signed with the app's signing secret)",
                "parameters": [
                    {
                        "name": "X-Slack-Request-Timestamp",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "X-Slack-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["payload"],
                                "properties": {
                                    "payload": {
                                        "type": "string",
                                        "description": "block_actions JSON with user.username, response_url and "
                                        "an action alertq_ack whose value is the signed token",
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Queued; the message is replaced through response_url afterwards. Or nothing "
                        "queued (already acknowledged, earlier problem, recovered): the clicker is told so through "
                        "response_url."
                    },
                    **_REFUSALS,
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": '`{"status": "ok"}`'}}}},
        "/openapi.json": {"get": {"summary": "This description", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}
