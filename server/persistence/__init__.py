"""Persistence: store protocols (interface.py) and their SQLite / PostgreSQL implementations."""
