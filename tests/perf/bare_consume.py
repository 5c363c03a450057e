"""Baseline for the worker: the least a pika program does to take N messages off a queue and ack each.
Prints the seconds from the first message to the last ack."""

import sys
import time

import pika

url, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.basic_qos(prefetch_count=200)
first = 0.0
for seen, (method, _properties, _body) in enumerate(channel.consume(queue), start=1):
    first = first or time.perf_counter()
    channel.basic_ack(method.delivery_tag)
    if seen == count:
        break
print(time.perf_counter() - first)
connection.close()
