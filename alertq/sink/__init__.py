"""`alertq sink`: a local stand-in for Mattermost, Slack, a webhook receiver and an SMTP server.

It keeps what the workers send and shows it on a web page roughly as the chat would, so the whole
pipeline can be seen working on one machine with no chat at all. Not a production part.

Flow: server.py starts the HTTP app (app.py) and the SMTP server (smtp.py) on one event loop; both
put messages into the store (store.py), each rendered once by render.py; a button click on the page
goes through actions.py to the ack listener exactly as the chat would send it.

The chat APIs: mattermost_api.py (REST v4) and slack_api.py (Web API) answer as the services do,
keep their posts in the same store with their place in a thread (store.ApiPost), limit rates with
ratelimit.py and record every call in calls.py (GET /api/calls).
"""
