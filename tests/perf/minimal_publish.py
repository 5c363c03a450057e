"""Baseline for the direct path: the least a Python program can do to publish one event with a confirm."""

import sys

import pika

connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
channel.confirm_delivery()
props = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id="bench")
channel.basic_publish("alertq.events", "notify.mattermost", sys.argv[2].encode(), props, mandatory=True)
connection.close()
