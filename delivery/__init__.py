"""Delivery plumbing shared by every process that talks to the outside: outcomes, HTTP, chat API clients."""
