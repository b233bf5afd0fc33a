"""Connection-level names (temporalio.service equivalents): TLS settings, RPC errors and status codes."""

from __future__ import annotations

from ._service import ServiceClient, TLSConfig
from .exceptions import RPCError, RPCStatusCode

__all__ = ["RPCError", "RPCStatusCode", "ServiceClient", "TLSConfig"]
