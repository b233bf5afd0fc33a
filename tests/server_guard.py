"""The last-resort guard's tripwire: every Durata process a test starts is checked, when it stops, for RPCs that
ended in the guard (a Python exception no handler turned into a status). Any such RPC fails the test run.

Two sources, because a test may kill a process before it can be scraped: the process's
``durata_rpc_unhandled_errors`` metric while it is alive, and its log ("unhandled error in rpc") afterwards.
"""

from __future__ import annotations

import re
import urllib.request

GUARD_LOG_EVENT = "unhandled error in rpc"
_SAMPLE = re.compile(r"^durata_rpc_unhandled_errors_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$", re.M)

# "<process>: <what>" for every unhandled RPC seen during this test run; tests/conftest.py fails the run on any.
FINDINGS: list[str] = []


def unhandled_in_metrics(text: str) -> list[str]:
    return [f"{m['labels']} = {m['value']}" for m in _SAMPLE.finditer(text) if float(m["value"]) > 0]


def scrape(process: str, metrics_port: int) -> None:
    """Record the unhandled-RPC counter of a live process (best effort: a dead process has no metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return
    FINDINGS.extend(f"{process}: {item}" for item in unhandled_in_metrics(text))


def check_log(process: str, log_text: str) -> None:
    FINDINGS.extend(f"{process}: {line.strip()[:500]}" for line in log_text.splitlines() if GUARD_LOG_EVENT in line)
