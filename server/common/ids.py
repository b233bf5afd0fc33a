"""Identifiers Durata mints for clients to see."""

from __future__ import annotations

import uuid_utils


def new_run_id() -> str:
    """A UUIDv7, as Temporal 1.32 gives run ids: time-ordered, so SDKs and users that read the version see 7."""
    return str(uuid_utils.uuid7())
