"""``python -m bench.visibility``: PostgreSQL visibility at N runs — list/count latency through the store's
public methods with Temporal query strings, and the write cost of a visibility update. See bench/README.md."""
