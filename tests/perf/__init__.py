"""Benchmarks, run by `make bench` only (marker `perf`; `make test` deselects them).

Each benchmark runs whole processes against a baseline measured in the same run and prints a table of
ratios with PASS/MISS against the target (tests/perf/bench.py says how). Only targets with a wide margin
or no dependence on the machine's load are asserted: peak RSS and the relay's throughput ratio.

The broker is the suite's usual one (a vhost of each test's own). To measure on a RabbitMQ node of your
own instead, point RABBITMQ_URL at it and RABBITMQ_NODENAME at its node name (rabbitmqctl creates the
vhosts there).
"""
