"""Dead letters for SREs: look at them, replay them, purge them, move them between brokers.

One pass over the dead-letter queue (`scan`) is the heart of every command: it consumes the queue up
to the depth it had when the pass began, hands each message that matches the filter (`filters`) to one
action (`actions`: list, purge, replay, export) and holds every other message unacked. At the end
the channel is closed, and RabbitMQ returns the held messages to the head of the queue in their
original order, ahead of anything that arrived meanwhile (tests/test_dlq_order.py proves it on the
broker). A process killed mid-pass loses nothing for the same reason: its connection drops and the
broker returns every unacked message.

- `letter`: one dead letter, parsed: reason, channel, times, event fields (alertq's headers or the
  broker's own `x-death` when a quorum queue's delivery limit dead-lettered it).
- `filters`: what the operator asked for (channel, reason, host, …, age).
- `scan`: the pass itself, on a pika SelectConnection (pipelined confirms, `broker.pipeline`, need an
  async channel).
- `replay`: where a dead letter goes back to and with which headers.
- `archive`: the JSON-lines file of `export` and `import`.
- `actions`: what a pass does with each match.
"""
