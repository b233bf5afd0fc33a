"""The lexing both SQL-like query languages share (visibility list queries, worker list filters): whitespace
skipped, one regex alternative per token kind, quotes undone. Each language keeps its own tokens and errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator


def unquote(text: str) -> str:
    """A quoted string literal's value: doubled quotes and backslash escapes undone."""
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def scan(query: str, token_re: re.Pattern[str], error: Callable[[int], Exception]) -> Iterator[re.Match[str]]:
    """The matches of ``token_re`` over ``query``, in order; ``error(pos)`` is raised where nothing matches."""
    pos = 0
    while True:
        while pos < len(query) and query[pos].isspace():
            pos += 1
        if pos >= len(query):
            return
        m = token_re.match(query, pos)
        if m is None or m.end() == pos:
            raise error(pos)
        yield m
        pos = m.end()
