"""Read py-spy collapsed stacks (``py-spy record -f raw``, as written by ``--profile-dir``) and rank the costs.

``python -m bench.flame FILE [FILE...]`` prints three views, each as a share of all non-idle samples:
- *threads*: the event-loop thread vs the others (SQLite's writer thread, ...);
- *self*: the innermost Python frame with its line (native code below it, e.g. a COMMIT's fsync, is charged to
  it unless py-spy ran with ``--native``);
- *owner*: the innermost frame that is Durata's own code (server/, services/), so time inside protobuf,
  sqlite3, grpc or asyncio is charged to the Durata function that asked for it — the actionable view;
- *inclusive*: every Durata function on the stack (a function counts once per sample).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")
OWN_CODE = ("/server/", "/services/")


@dataclass
class Profile:
    total: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    owner: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)


def _name(frame: str, line_level: bool = False) -> tuple[str, bool]:
    """``func (path/to/file.py:12)`` -> (``path/file.py:func``, is Durata code)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), False
    path = m.group("file")
    short = path.rsplit("/site-packages/", 1)[-1]
    for part in OWN_CODE:
        if part in short and not short.startswith(part.lstrip("/")):
            short = part.lstrip("/") + short.split(part, 1)[1]
    own = short.startswith(tuple(p.lstrip("/") for p in OWN_CODE)) and "/site-packages/" not in path
    return f"{short}:{m.group('func')}:{m.group('line')}" if line_level else f"{short}:{m.group('func')}", own


def load(paths: list[Path]) -> Profile:
    prof = Profile()
    for path in paths:
        for raw in path.read_text(errors="replace").splitlines():
            stack, _, count_text = raw.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            parts = stack.split(";")
            frames = [_name(f) for f in parts]
            if not frames:
                continue
            prof.total += count
            prof.threads["main thread (event loop)" if "runpy" in parts[0] else "other threads (sqlite, ...)"] += count
            prof.self_time[_name(parts[-1], line_level=True)[0]] += count
            owners = [name for name, own in frames if own]
            prof.owner[owners[-1] if owners else "(no Durata frame: event loop / grpc / threads)"] += count
            for name in set(owners):
                prof.inclusive[name] += count
    return prof


def render(prof: Profile, top: int) -> str:
    lines = [f"{prof.total} samples"]
    for title, counter in (("threads", prof.threads), ("self (innermost frame, with line)", prof.self_time), ("owner (innermost Durata frame)", prof.owner),
                           ("inclusive (Durata frames)", prof.inclusive)):
        lines.append(f"\n== {title}")
        for name, n in counter.most_common(top):
            lines.append(f"{100.0 * n / max(prof.total, 1):6.1f}%  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flame", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(render(load(args.files), args.top))


if __name__ == "__main__":
    main()
