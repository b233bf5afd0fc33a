"""Child processes of the benchmark and the CPU they burn, read from ``/proc``.

Every child runs in its own session (process group), so stopping it also stops anything it spawned, and every
child is registered until reaped: an ``atexit`` hook and the SIGTERM handler kill what is left, so neither an
error nor Ctrl-C leaves servers or workers behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_CLK_TCK = os.sysconf("SC_CLK_TCK")

# Children still running; killed at interpreter exit whatever happened before.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def reap_all() -> None:
    """SIGKILL every child still registered (and its process group); the last line of defence."""
    for proc in list(_LIVE.values()):
        if proc.poll() is None:
            _kill_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    _LIVE.clear()


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks (and then ``atexit``) run as on Ctrl-C."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """One child process, logging stdout+stderr to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _LIVE[self.proc.pid] = self.proc
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path}\n" + "\n".join(text)

    def check_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.name} exited with status {code}\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Anything the child left in its group (it should not) goes too.
        _kill_group(self.proc, signal.SIGKILL)
        _LIVE.pop(self.proc.pid, None)


def python_argv(*args: str) -> list[str]:
    """``python -m ...`` with this interpreter (the venv's)."""
    return [sys.executable, *args]


# ---------------------------------------------------------------- CPU from /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_cpu_seconds(root_pids: list[int]) -> float:
    """utime+stime of every root pid and all its descendants (threads are included in a process's figures;
    reaped children's time is in cutime/cstime, counted too so a child that exits mid-window is not lost)."""
    children = _children_map()
    total_ticks = 0
    seen: set[int] = set()
    stack = list(root_pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the pid and comm: state=0, ppid=1, ... utime=11, stime=12, cutime=13, cstime=14.
        total_ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
        stack.extend(children.get(pid, []))
    return total_ticks / _CLK_TCK


def main_thread_cpu_seconds(pid: int) -> float:
    """utime+stime of a process's main thread only: for a Python server, its event loop (the GIL holder),
    whose saturation (CPU seconds per wall second near 1) means more load cannot be served."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def self_cpu_seconds() -> float:
    """CPU of this process (the load generator), all threads."""
    t = os.times()
    return t.user + t.system


def wait_until(condition: object, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``condition()`` (sync) until true or raise TimeoutError."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
