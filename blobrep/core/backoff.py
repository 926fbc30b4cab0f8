"""The retry schedule of a failing region: capped exponential backoff with jitter.

A region that fails replication is usually failing for a reason that takes a while to go
away (a store that is down, a full disk, a permission someone has to fix), so retrying it at
once, or at a fixed pace, only repeats the same failure and the same load. The schedule
waits ``first`` seconds after the first failure and ``factor`` times longer after each
further one, never more than ``cap``; after ``attempts`` failed attempts in all it stops, and
the region stays Failed with its details until someone acts.

Jitter spreads retries that would otherwise fall in step (every region of a store that came
back at the same moment): each delay is the nominal one shortened by up to ``jitter`` of
itself. Shortening rather than lengthening keeps the cap a real upper bound, and with the
default factor 2 and jitter 1/2 the jittered delays still never shrink from one failure to
the next below the cap (the lowest draw of one step, ``d``, equals the highest of the step
before it).

The random draw comes in as an argument in ``[0, 1)``: this module holds no generator and
no clock, so every schedule can be computed and tested exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from blobrep.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try a failing thing again, and when to stop."""

    first: float
    """Seconds before the first retry (after the first failure)."""
    cap: float
    """The longest delay, however many failures came before."""
    attempts: int = 5
    """Attempts in all, the first one included; after this many failures there is no retry."""
    factor: float = 2.0
    """How much longer each delay is than the one before (below the cap)."""
    jitter: float = 0.5
    """The largest share of a delay that a draw may take off it, in ``[0, 1)``."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.first) and self.first > 0):
            raise InvalidParameterError(
                f"the first retry delay is {self.first}; give a positive number of seconds"
            )
        if not (math.isfinite(self.cap) and self.cap >= self.first):
            raise InvalidParameterError(
                f"the longest retry delay is {self.cap}; give at least the first delay ({self.first} s)"
            )
        if self.attempts < 1:
            raise InvalidParameterError(f"attempts is {self.attempts}; at least 1 attempt must be made")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise InvalidParameterError(f"the backoff factor is {self.factor}; give 1 or more")
        if not (0 <= self.jitter < 1):
            raise InvalidParameterError(
                f"jitter is {self.jitter}; give a share from 0 up to (not including) 1"
            )

    def nominal(self, failures: int) -> float:
        """The delay after ``failures`` failures (1 or more) before jitter: ``first *
        factor ** (failures - 1)``, at most ``cap``.

        Raises:
            InvalidParameterError: ``failures`` is below 1 (nothing failed: nothing to wait for).
        """
        if failures < 1:
            raise InvalidParameterError(f"failures is {failures}; a retry delay follows 1 failure or more")
        steps = failures - 1
        # Compared in logarithms, so a long run of failures never overflows a float.
        if self.factor > 1 and steps * math.log(self.factor) >= math.log(self.cap / self.first):
            return self.cap
        return min(self.cap, self.first * self.factor**steps)

    def delay(self, failures: int, draw: float) -> float:
        """The jittered delay after ``failures`` failures, for a uniform ``draw`` in ``[0, 1)``:
        between ``(1 - jitter)`` times the nominal delay and the nominal delay itself.

        Raises:
            InvalidParameterError: ``failures`` is below 1, or ``draw`` is outside ``[0, 1)``.
        """
        if not (0 <= draw < 1):
            raise InvalidParameterError(f"draw is {draw}; give a uniform number in [0, 1)")
        return self.nominal(failures) * (1 - self.jitter * draw)

    def exhausted(self, failures: int) -> bool:
        """True once ``failures`` failed attempts used up every attempt: no retry follows."""
        return failures >= self.attempts
