"""Baseline for the worker: the least a pika program does to take N messages off a queue and ack each.
Prints the seconds from message number SKIP + 1 to the last ack (the first SKIP are warm-up, excluded
as they are from the worker's figure), and the CPU seconds this process spent meanwhile."""

import sys
import time

import pika

url, queue, count, skip = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.basic_qos(prefetch_count=200)
first = 0.0
for seen, (method, _properties, _body) in enumerate(channel.consume(queue), start=1):
    if seen == skip + 1:
        first = time.perf_counter()
        first_cpu = time.process_time()
    channel.basic_ack(method.delivery_tag)
    if seen == count:
        break
print(time.perf_counter() - first, time.process_time() - first_cpu)
connection.close()
