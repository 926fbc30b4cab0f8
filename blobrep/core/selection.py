"""Replica selection policies: which replica of a region serves the next chunk read.

A policy is a pure function of a snapshot of per-replica load (bytes requested and not yet
returned) and a random source passed in, so that tests can replay a choice exactly and the
engine owns all state. The policies:

* ``least-loaded`` (the default): the replica with the fewest outstanding bytes, ties broken
  at random. The engine updates the counts synchronously as it chooses, so the information is
  never stale; with stale counts this rule herds (Mitzenmacher, "How Useful Is Old
  Information?", 2000), which is why power of two choices is kept beside it.
* ``power-of-two``: two distinct random candidates, the less loaded of them. Nearly as good as
  least-loaded with fresh counts, and robust when the counts lag.
* ``round-robin`` and ``random``: load-blind, kept for comparison in benchmarks.

Replicas that already failed for a chunk are excluded, so a failover never asks the same
replica twice.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from enum import StrEnum

from blobrep.errors import InvalidParameterError


class Policy(StrEnum):
    """How a reader picks the replica for each chunk."""

    LEAST_LOADED = "least-loaded"
    POWER_OF_TWO = "power-of-two"
    ROUND_ROBIN = "round-robin"
    RANDOM = "random"


def parse_policy(text: str) -> Policy:
    """The policy named ``text`` (case and surrounding blanks ignored).

    Raises:
        InvalidParameterError: listing the valid names, if ``text`` names none.
    """
    try:
        return Policy(text.strip().lower())
    except ValueError:
        choices = ", ".join(policy.value for policy in Policy)
        raise InvalidParameterError(
            f"unknown replica selection policy {text!r}: choose one of {choices}"
            f" ({Policy.LEAST_LOADED.value} is the default)"
        ) from None


def choose_replica(
    policy: Policy,
    outstanding: Sequence[int],
    *,
    rng: random.Random,
    turn: int,
    exclude: Collection[int] = (),
) -> int:
    """The index of the replica to read from next.

    Args:
        policy: the rule to apply.
        outstanding: per replica, bytes requested from it and not yet returned.
        rng: the only source of randomness (ties, candidates, ``random``).
        turn: a counter the caller advances per choice; ``round-robin`` takes the
            ``turn``-th replica (modulo) among those not excluded.
        exclude: indexes that must not be chosen (replicas that already failed this chunk).

    Raises:
        InvalidParameterError: if no replica is left to choose from.
    """
    candidates = [index for index in range(len(outstanding)) if index not in exclude]
    if not candidates:
        raise InvalidParameterError(
            f"no replica left to choose from: all {len(outstanding)} are excluded"
            if outstanding
            else "no replica to choose from: the region has none"
        )
    if len(candidates) == 1:
        return candidates[0]
    if policy is Policy.LEAST_LOADED:
        least = min(outstanding[index] for index in candidates)
        return rng.choice([index for index in candidates if outstanding[index] == least])
    if policy is Policy.POWER_OF_TWO:
        # sample() returns the pair in random order, so keeping the first on a tie is fair.
        first, second = rng.sample(candidates, 2)
        return second if outstanding[second] < outstanding[first] else first
    if policy is Policy.ROUND_ROBIN:
        return candidates[turn % len(candidates)]
    return rng.choice(candidates)
