"""The baseline of tests/perf/test_enqueue_nagios_bench.py: the least a notification command written in
Python does, one file per notification (argv[1] the directory, the rest the core's arguments).

Standard library modules that every Python has loaded at start-up only, and no fsync: the floor that
alertq-enqueue (which also builds an event, fsyncs it and probes the relay) is held against.
"""

import os
import sys
import time

# os.path, not pathlib: pathlib is an import that the least a command can do does not pay.
with open(os.path.join(sys.argv[1], f"{time.time_ns()}-{os.getpid()}.txt"), "w") as out:  # noqa: PTH118
    out.write("\n".join(sys.argv[2:]))
