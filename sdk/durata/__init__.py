"""Durata's pure-Python SDK for Temporal-API servers (Durata's own server or Temporal's).

Public names follow ``temporalio`` so programs port by changing imports:
``from durata import workflow, activity``, ``durata.client.Client``, ``durata.worker.Worker``.
"""

from __future__ import annotations

from ._api_path import install as _install_api_path

_install_api_path()

__version__ = "0.1.0"
