"""What RabbitMQ 3.10 does with messages a consumer gives back, on a quorum queue like alertq.dead:
the facts `broker/dlq/scan.py` is built on. If a broker upgrade changes them, these fail first."""

from __future__ import annotations

import pika

from tests.support.amqp import connect, take

QUEUE = "order.probe"


def _fill(url: str, count: int) -> None:
    connection = connect(url)
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    for i in range(count):
        channel.basic_publish("", QUEUE, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    connection.close()


def _consume_holding(url: str, count: int, take_if) -> tuple[pika.BlockingConnection, pika.channel.Channel, list[int]]:
    """Consume `count` messages, ack those `take_if` accepts, hold the others unacked."""
    connection = connect(url)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=count)
    held = []
    for method, _props, body in channel.consume(QUEUE, inactivity_timeout=10):
        assert method is not None, "queue delivered fewer messages than it held"
        if take_if(int(body)):
            channel.basic_ack(method.delivery_tag)
        else:
            held.append(method.delivery_tag)
        if method.delivery_tag >= count:
            break
    return connection, channel, held


def _publish_new(connection: pika.BlockingConnection) -> None:
    connection.channel().basic_publish("", QUEUE, b"new", pika.BasicProperties(delivery_mode=2))


def test_closing_the_channel_returns_held_messages_to_the_head_in_order(amqp_url):
    _fill(amqp_url, 3000)
    connection, _channel, _held = _consume_holding(amqp_url, 3000, lambda i: i % 7 == 3)
    _publish_new(connection)  # arrives while the held messages are out
    connection.close()
    left = [m.body.decode() for m in take(amqp_url, QUEUE)]
    assert left == [str(i) for i in range(3000) if i % 7 != 3] + ["new"]


def test_nack_with_requeue_sends_messages_behind_new_arrivals(amqp_url):
    """Why a pass never nacks what it skips: the order would be lost."""
    _fill(amqp_url, 100)
    connection, channel, held = _consume_holding(amqp_url, 100, lambda i: i % 2 == 0)
    _publish_new(connection)
    channel.cancel()
    for tag in held:
        channel.basic_nack(tag, requeue=True)
    connection.close()
    left = [m.body.decode() for m in take(amqp_url, QUEUE)]
    assert sorted(left) == sorted([str(i) for i in range(100) if i % 2] + ["new"])
    assert left != [str(i) for i in range(100) if i % 2] + ["new"]
