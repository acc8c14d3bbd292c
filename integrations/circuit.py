"""Circuit breaker per provider, shared by every process through integrations.shared_state.

Policy (documented in docs/outbound-client.md): the circuit counts *consecutive* failed
attempts. `provider.circuit_failure_threshold` of them in a row open it; any answer that
shows the provider working (2xx-4xx, except 408 and 429) resets the count. A failure is a
connection error, a timeout, a 408, a 5xx or an unreadable answer; business 4xx are never
failures, and a 429 is neither (the rate limit and Retry-After deal with it).

While open, attempts fail at once with CIRCUIT_OPEN and no socket is opened. Once
`circuit_open_seconds` have passed, exactly one attempt in all processes wins the probe
claim (an atomic add in the shared store) and goes through: its success closes the circuit,
its failure opens it for another period. A probe that never reports (its process died)
frees its claim when the claim expires.

The breaker is a gate with two steps around each attempt: `circuit_permit` before it (one
read of the shared state; a write only to claim the probe) and `circuit_record` after it
(a write only when the outcome changes something: a failure, or a success after failures).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from integrations import shared_state
from integrations.shared_state import KEEP

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
SUCCESS, FAILURE, NEUTRAL = "success", "failure", "neutral"
STATE_TTL = 30 * 24 * 3600.0  # kept long after the last change, for the admin


def _key(slug: str) -> str:
    return f"circuit:{slug}"


def _probe_key(slug: str) -> str:
    return f"circuit:{slug}:probe"


@dataclass(frozen=True)
class Permit:
    """Leave to make one attempt. `probe` when it is the half-open trial; `dirty` when the
    shared state has something a success must clear (so a healthy call writes nothing)."""

    probe: bool = False
    token: str = ""
    dirty: bool = False


@dataclass(frozen=True)
class CircuitStatus:
    """What the admin, /health/ready and /metrics show about one provider's circuit."""

    state: str
    failures: int
    changed_at: float | None
    opened_at: float | None
    reopens_at: float | None
    last_error: str
    total_failures: int
    total_opens: int

    @property
    def numeric(self) -> int:
        """0 closed, 1 half-open (probing or due to), 2 open: the Prometheus gauge value."""
        return {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}[self.state]


def _status(raw: dict | None, open_seconds: float, now: float) -> CircuitStatus:
    raw = raw or {}
    state = raw.get("state", CLOSED)
    opened_at = raw.get("opened_at")
    reopens_at = opened_at + open_seconds if state != CLOSED and opened_at else None
    if state == OPEN and reopens_at is not None and now >= reopens_at:
        state = HALF_OPEN  # due for a probe: the next attempt anywhere tries it
    return CircuitStatus(state=state, failures=raw.get("failures", 0), changed_at=raw.get("changed_at"),
                         opened_at=opened_at, reopens_at=reopens_at, last_error=raw.get("last_error", ""),
                         total_failures=raw.get("total_failures", 0), total_opens=raw.get("total_opens", 0))


def circuit_status(*, provider) -> CircuitStatus:
    """The current state of `provider`'s circuit."""
    return _status(shared_state.store().get(_key(provider.slug)), provider.circuit_open_seconds, time.time())


def circuit_statuses(*, providers) -> dict[str, CircuitStatus]:
    """States of several providers in one read of the shared store."""
    providers = list(providers)
    raws = shared_state.store().get_many([_key(p.slug) for p in providers])
    now = time.time()
    return {p.slug: _status(raws.get(_key(p.slug)), p.circuit_open_seconds, now) for p in providers}


def circuit_permit(*, provider, probe_ttl: float) -> Permit | None:
    """A permit for one attempt, or None when the circuit is open (fail fast, no socket).

    `probe_ttl` bounds how long a half-open claim lasts if its holder never reports back:
    the caller's remaining deadline.
    """
    store = shared_state.store()
    raw = store.get(_key(provider.slug))
    if not raw:
        return Permit()
    state = raw.get("state", CLOSED)
    if state == CLOSED:
        return Permit(dirty=raw.get("failures", 0) > 0)
    now = time.time()
    if now < raw["opened_at"] + provider.circuit_open_seconds:
        return None
    token = uuid.uuid4().hex
    if not store.add(_probe_key(provider.slug), token, ttl=max(probe_ttl, 1.0)):
        return None  # another process holds the probe

    def mark_half_open(current):
        if not current or current.get("state") != OPEN:
            return KEEP, None
        return {**current, "state": HALF_OPEN, "changed_at": now}, None

    store.update(_key(provider.slug), mark_half_open, STATE_TTL)
    return Permit(probe=True, token=token, dirty=True)


def circuit_record(*, provider, permit: Permit, outcome: str, error: str = "") -> str | None:
    """Report an attempt's outcome (SUCCESS, FAILURE or NEUTRAL); returns the new state when
    this report changed it (for logs and metrics), else None."""
    store = shared_state.store()
    threshold = provider.circuit_failure_threshold
    now = time.time()
    changed: list[str] = []

    def on_success(current):
        if not current or (current.get("state", CLOSED) == CLOSED and not current.get("failures")):
            return KEEP, None
        if current.get("state", CLOSED) != CLOSED and not permit.probe:
            # Only the probe closes an open circuit. This success went out on an older view
            # (in flight when another process opened it).
            return KEEP, None
        if current.get("state") != CLOSED:
            changed.append(CLOSED)
        return {**current, "state": CLOSED, "failures": 0, "changed_at": now if changed else
                current.get("changed_at", now)}, None

    def on_failure(current):
        current = dict(current or {"state": CLOSED, "failures": 0, "changed_at": now})
        current["failures"] = current.get("failures", 0) + 1
        current["total_failures"] = current.get("total_failures", 0) + 1
        current["last_error"] = error
        state = current.get("state", CLOSED)
        # A failed probe reopens; in closed state the threshold opens. Failures reported by
        # attempts that started before the circuit opened change nothing more.
        if (state == HALF_OPEN and permit.probe) or (state == CLOSED and current["failures"] >= threshold):
            current.update(state=OPEN, opened_at=now, changed_at=now,
                           total_opens=current.get("total_opens", 0) + 1)
            changed.append(OPEN)
        return current, None

    if outcome == SUCCESS and (permit.dirty or permit.probe):
        store.update(_key(provider.slug), on_success, STATE_TTL)
    elif outcome == FAILURE:
        store.update(_key(provider.slug), on_failure, STATE_TTL)
    if permit.probe:
        shared_state.release(_probe_key(provider.slug), permit.token)
    return changed[0] if changed else None


def circuit_reset(*, provider) -> None:
    """Close the circuit now (admin action), keeping its lifetime counters."""
    now = time.time()

    def reset(current):
        return {**(current or {}), "state": CLOSED, "failures": 0, "changed_at": now, "opened_at": None}, None

    shared_state.store().update(_key(provider.slug), reset, STATE_TTL)
    shared_state.store().delete(_probe_key(provider.slug))
