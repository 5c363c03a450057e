"""The state store the processes share (`state_store`: SQLite by default, PostgreSQL for several hosts):
the escalator's incidents and steps, the ack listener's used buttons."""
