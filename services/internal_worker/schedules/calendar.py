"""Matching and searching one structured calendar in a time zone.

A time matches when every field matches (so day-of-month and day-of-week both restrict, unlike classic cron's
"either"). The search for the next match walks the wall clock field by field, outermost first, the way Temporal's
does, and inherits its DST rules: a wall time skipped by a spring-forward change never fires, and when an hour is
repeated by a fall-back change the matches in the repeated hour fire twice (once per copy).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo

from temporalio.api.schedule.v1 import message_pb2 as sched

from .gotime import go_date, go_weekday, wall
from .parse import MAX_YEAR

HOUR = 3600


def range_values(ranges: Iterable[sched.Range], low: int, high: int) -> frozenset[int]:
    """The values a list of ranges selects, clipped to [low, high] (end < start means just start; step 0 means 1)."""
    values: set[int] = set()
    for r in ranges:
        step = r.step if r.step > 0 else 1
        end = max(r.end, r.start)
        values.update(v for v in range(max(r.start, low), min(end, high) + 1) if (v - r.start) % step == 0)
    return frozenset(values)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 + ((0b1010110101010 >> month) & 1)


class CompiledCalendar:
    """A ``StructuredCalendarSpec`` ready to match instants (Unix seconds) in ``tz``."""

    def __init__(self, cal: sched.StructuredCalendarSpec, tz: tzinfo) -> None:
        self.tz = tz
        # An empty list matches nothing, except for year, where it means every year.
        self.years = range_values(cal.year, 0, 9999) if len(cal.year) else None
        self.months = range_values(cal.month, 1, 12)
        self.days = range_values(cal.day_of_month, 1, 31)
        self.weekdays = range_values(cal.day_of_week, 0, 6)
        self.hours = range_values(cal.hour, 0, 23)
        self.minutes = range_values(cal.minute, 0, 59)
        self.seconds = range_values(cal.second, 0, 59)

    def _year_ok(self, year: int) -> bool:
        return self.years is None or year in self.years

    def matches(self, unix: int) -> bool:
        w = wall(unix, self.tz)
        return (
            self._year_ok(w.year)
            and w.month in self.months
            and w.day in self.days
            and go_weekday(w) in self.weekdays
            and w.hour in self.hours
            and w.minute in self.minutes
            and w.second in self.seconds
        )

    def next(self, after: int) -> int | None:
        """The first matching instant (whole seconds) strictly after ``after``, or None before the year 2100 ends."""
        tz = self.tz
        w = wall(after, tz)
        y, mo, d, h, m, s = w.year, w.month, w.day, w.hour, w.minute, w.second
        # ``shift`` is one hour while the search walks the second copy of a repeated (fall-back) hour: wall times
        # are then resolved to their first copy and moved an hour on.
        shift = HOUR if wall(after - HOUR, tz).hour == h else 0
        s += 1
        while True:
            # Carry overflowing fields outwards.
            if s >= 60:
                m, s = m + 1, 0
            if m >= 60:
                this_hour = go_date(tz, y, mo, d, h)
                h, m = h + 1, 0
                if shift == 0 and go_date(tz, y, mo, d, h) - this_hour > HOUR:
                    h, shift = h - 1, HOUR  # the hour just left repeats: walk its second copy
                else:
                    shift = 0
            if h >= 24:
                d, h = d + 1, 0
            if mo <= 12 and d > days_in_month(y, mo):
                mo, d = mo + 1, 1
            if mo > 12:
                y, mo = y + 1, 1
            if y > MAX_YEAR:
                return None
            # Then match fields from the outside in; a field that cannot match resets everything inside it.
            if not self._year_ok(y):
                y, mo, d, h, m, s, shift = y + 1, 1, 1, 0, 0, 0, 0
                continue
            while mo not in self.months:
                mo, d, h, m, s, shift = mo + 1, 1, 0, 0, 0, 0
                if mo > 12:
                    break
            if mo > 12:
                continue
            while (
                d not in self.days
                or go_weekday(wall(go_date(tz, y, mo, d, h, m, s), tz)) not in self.weekdays
            ):
                d, h, m, s, shift = d + 1, 0, 0, 0, 0
                if d > days_in_month(y, mo):
                    break
            if d > days_in_month(y, mo):
                continue
            while h not in self.hours:
                h, m, s, shift = h + 1, 0, 0, 0
                if h >= 24:
                    break
            if h >= 24:
                continue
            while m not in self.minutes:
                m, s = m + 1, 0
                if m >= 60:
                    break
            if m >= 60:
                continue
            while s not in self.seconds:
                s += 1
                if s >= 60:
                    break
            if s >= 60:
                continue
            found = go_date(tz, y, mo, d, h, m, s)
            if wall(found, tz).hour != h:
                # The wall time does not exist (a spring-forward gap): go on from the next hour.
                h, m, s = h + 1, 0, 0
                continue
            return found + shift
