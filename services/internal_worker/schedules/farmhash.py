"""FarmHash's 32-bit fingerprint (the "mk" variant of Hash32), in pure Python.

Temporal derives a schedule's jitter from this fingerprint of the nominal time and a seed. Matching it bit for bit
makes Durata's jittered times equal to what a Temporal server would compute for the same schedule, so
ListScheduleMatchingTimes answers the same on both. The algorithm is Google's public FarmHash (MIT licensed).
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593


def _rotr(v: int, shift: int) -> int:
    return ((v >> shift) | (v << (32 - shift))) & _MASK


def _word(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def _mur(a: int, h: int) -> int:
    a = (_rotr((a * _C1) & _MASK, 17) * _C2) & _MASK
    h = _rotr(h ^ a, 19)
    return (h * 5 + 0xE6546B64) & _MASK


def _len_0_to_4(data: bytes) -> int:
    b, c = 0, 9
    for byte in data:
        signed = byte - 256 if byte >= 128 else byte
        b = (b * _C1 + signed) & _MASK
        c ^= b
    return _fmix(_mur(b, _mur(len(data), c)))


def _len_5_to_12(data: bytes) -> int:
    n = len(data)
    a, b, c = n, n * 5, 9
    d = b
    a = (a + _word(data, 0)) & _MASK
    b = (b + _word(data, n - 4)) & _MASK
    c = (c + _word(data, (n >> 1) & 4)) & _MASK
    return _fmix(_mur(c, _mur(b, _mur(a, d))))


def _len_13_to_24(data: bytes) -> int:
    n = len(data)
    a = _word(data, (n >> 1) - 4)
    b = _word(data, 4)
    c = _word(data, n - 8)
    d = _word(data, n >> 1)
    e = _word(data, 0)
    f = _word(data, n - 4)
    h = (d * _C1 + n) & _MASK
    a = (_rotr(a, 12) + f) & _MASK
    h = (_mur(c, h) + a) & _MASK
    a = (_rotr(a, 3) + c) & _MASK
    h = (_mur(e, h) + a) & _MASK
    a = (_rotr((a + f) & _MASK, 12) + d) & _MASK
    h = (_mur(b, h) + a) & _MASK
    return _fmix(h)


def _mix_tail(v: int) -> int:
    return (_rotr((v * _C1) & _MASK, 17) * _C2) & _MASK


def _step(h: int, a: int) -> int:
    h = _rotr(h ^ a, 19)
    return (h * 5 + 0xE6546B64) & _MASK


def fingerprint32(data: bytes) -> int:
    """FarmHash Fingerprint32 of ``data`` (an unsigned 32-bit integer)."""
    n = len(data)
    if n <= 4:
        return _len_0_to_4(data)
    if n <= 12:
        return _len_5_to_12(data)
    if n <= 24:
        return _len_13_to_24(data)
    h = n
    g = (_C1 * n) & _MASK
    f = g
    a0 = _mix_tail(_word(data, n - 4))
    a1 = _mix_tail(_word(data, n - 8))
    a2 = _mix_tail(_word(data, n - 16))
    a3 = _mix_tail(_word(data, n - 12))
    a4 = _mix_tail(_word(data, n - 20))
    h = _step(_step(h, a0), a2)
    g = _step(_step(g, a1), a3)
    f = (_rotr((f + a4) & _MASK, 19) + 113) & _MASK
    pos = 0
    while n - pos > 20:
        a, b, c, d, e = (_word(data, pos + 4 * i) for i in range(5))
        h = (h + a) & _MASK
        g = (g + b) & _MASK
        f = (f + c) & _MASK
        h = (_mur(d, h) + e) & _MASK
        g = (_mur(c, g) + a) & _MASK
        f = (_mur((b + e * _C1) & _MASK, f) + d) & _MASK
        f = (f + g) & _MASK
        g = (g + f) & _MASK
        pos += 20
    g = (_rotr((_rotr(g, 11) * _C1) & _MASK, 17) * _C1) & _MASK
    f = (_rotr((_rotr(f, 11) * _C1) & _MASK, 17) * _C1) & _MASK
    h = (_rotr((h + g) & _MASK, 19) * 5 + 0xE6546B64) & _MASK
    h = (_rotr(h, 17) * _C1) & _MASK
    h = (_rotr((h + f) & _MASK, 19) * 5 + 0xE6546B64) & _MASK
    return (_rotr(h, 17) * _C1) & _MASK
