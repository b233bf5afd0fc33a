"""Matching service: task queues, long polls, sync match, persisted backlog, legacy query dispatch."""
