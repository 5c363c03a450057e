"""Baseline for the relay: publish each body of a JSON-lines file and wait for its confirm before the next.

usage: python sync_confirm_publish.py AMQP_URL BODIES_FILE
"""

import sys

import pika

connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
channel.confirm_delivery()
with open(sys.argv[2], "rb") as bodies:
    for number, body in enumerate(bodies):
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=str(number))
        channel.basic_publish("alertq.events", "notify.mattermost", body.rstrip(b"\n"), props, mandatory=True)
connection.close()
