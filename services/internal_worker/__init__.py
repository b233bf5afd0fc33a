"""The internal worker: system jobs (retention, ...) run as a client of the frontend's public API."""
