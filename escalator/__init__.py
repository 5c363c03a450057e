"""The escalator: opens an incident per unacknowledged problem and notifies its policy's steps in turn."""
