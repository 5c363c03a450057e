"""`alertq status`: what an SRE (or Nagios) needs to know at a glance.

`facts` gathers (queue depths and consumers by passive queue.declare, dead letters by reason, the
spool backlog, open incidents), `verdict` decides what needs attention, `render` prints a table,
JSON or a Nagios plugin line. The three stay apart so a check can be added without touching output.
"""
