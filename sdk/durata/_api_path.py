"""Load ``temporalio.api`` protobuf modules without running ``temporalio/__init__.py``.

The official package's ``__init__`` imports ``temporalio.service``, which loads the native Rust bridge.
Durata only needs the generated API messages and stubs, so when ``temporalio`` has not been imported yet we
register its package namespace (same search path) without executing that ``__init__``. If the user imports
``temporalio.client`` later, its submodules still resolve through the same path.
"""

from __future__ import annotations

import importlib.util
import pkgutil
import sys
import types


def install() -> None:
    if "temporalio" in sys.modules:
        return
    spec = importlib.util.find_spec("temporalio")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("Durata needs the temporalio package for its protobuf API definitions (temporalio.api)")
    pkg = types.ModuleType("temporalio", "Temporal API namespace (package __init__ not executed by Durata)")
    path = list(pkgutil.extend_path(list(spec.submodule_search_locations), "temporalio"))
    pkg.__path__ = path
    spec.submodule_search_locations = path
    pkg.__spec__ = spec
    pkg.__loader__ = spec.loader
    pkg.__file__ = spec.origin
    pkg.__package__ = "temporalio"
    sys.modules["temporalio"] = pkg
