"""One conversation per incident in Mattermost and Slack (API mode): the root post, its thread, its
edits (flow.py), the store that remembers them (store.py), what they show (render.py), the chats'
three operations (chats.py), destinations (destination.py), and webhook mode's dedupe (folding.py)."""
