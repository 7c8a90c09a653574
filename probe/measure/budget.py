"""The daily byte budget of the tests that move data (throttle, freeze).

Volunteers pay for their data plans: every byte a throttle or freeze test may
move is reserved here *before* it is sent or asked for, and a reservation the
day's budget cannot cover is refused, so no setting (pairs, confirmation,
intervals) and no misbehaving server can push the day over ``limit``. The
day is the UTC day; the count starts again at its midnight.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DAY = 86_400.0


class ByteBudget:
    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._day = int(clock() // DAY)
        self._used = 0
        self.refused = 0  # reservations turned down today (a test that did not run)

    def _roll(self) -> None:
        day = int(self._clock() // DAY)
        if day != self._day:
            self._day, self._used, self.refused = day, 0, 0

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    def take(self, n: int) -> bool:
        """Reserve ``n`` bytes; False (and nothing reserved) if today's budget cannot cover them."""
        self._roll()
        if n < 0 or self._used + n > self.limit:
            self.refused += 1
            return False
        self._used += n
        return True

    def give_back(self, n: int) -> None:
        """Return the unused part of a reservation (a transfer that stopped early)."""
        self._roll()
        self._used = max(0, self._used - max(0, n))
