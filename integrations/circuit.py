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

Local copy (why a healthy call does not touch the shared store): a process trusts the
*closed* state it last read for INTEGRATIONS_CIRCUIT_LOCAL_SECONDS (monotonic clock). A
circuit opened by another process therefore stops this process's attempts at most that long
after it opened. Open and half-open states are never cached: every attempt then reads the
shared state, so fail-fast and the single probe work exactly as without the copy. A process
forgets its copy whenever it writes the state (a failure, a success after failures, a
reset), so it always sees its own changes at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from integrations import shared_state
from integrations.conf import setting
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


_UNREAD = shared_state.UNREAD
_monotonic = time.monotonic  # the local copy's clock (tests replace it)
# (store name, provider pk, slug) -> (closed state as read, or None; monotonic time of the read)
_local: dict[tuple, tuple[dict | None, float]] = {}


def _local_key(provider) -> tuple:
    return (shared_state.store().name, provider.pk, provider.slug)


def _local_get(provider):
    entry = _local.get(_local_key(provider))
    if entry is None or _monotonic() - entry[1] >= float(setting("INTEGRATIONS_CIRCUIT_LOCAL_SECONDS")):
        return _UNREAD
    return entry[0]


def _local_put(provider, raw, read_at: float) -> None:
    if not raw or raw.get("state", CLOSED) == CLOSED:
        _local[_local_key(provider)] = (raw, read_at)
    else:
        _local.pop(_local_key(provider), None)


def _local_forget(provider) -> None:
    _local.pop(_local_key(provider), None)


def local_reset() -> None:
    """Forget every local copy of circuit states (tests)."""
    _local.clear()


def circuit_key(slug: str) -> str:
    """The shared-state key of a provider's circuit (the client reads it with its rate-limit token)."""
    return _key(slug)


def circuit_needs_read(*, provider) -> bool:
    """Whether this process's copy of the circuit is missing or stale, so the next permit
    must read the shared state (the client then reads it with its rate-limit token)."""
    return _local_get(provider) is _UNREAD


def circuit_permit(*, provider, probe_ttl: float, raw=_UNREAD) -> Permit | None:
    """A permit for one attempt, or None when the circuit is open (fail fast, no socket).

    `probe_ttl` bounds how long a half-open claim lasts if its holder never reports back:
    the caller's remaining deadline. `raw` is the circuit's state when the caller already
    read it (see circuit_key); without it, a fresh local copy of a closed circuit is used,
    else the shared state is read.
    """
    store = shared_state.store()
    if raw is _UNREAD:
        raw = _local_get(provider)
        if raw is _UNREAD:
            read_at = _monotonic()  # before the read: the copy can only expire early
            raw = store.get(_key(provider.slug))
            _local_put(provider, raw, read_at)
    else:
        # Read by the caller just now (with its rate-limit token).
        _local_put(provider, raw, _monotonic())
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
            # (in flight when another process opened it, or a local copy within its staleness).
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

    # The local copy is dropped after each write, so this process's next attempt sees it.
    if outcome == SUCCESS and (permit.dirty or permit.probe):
        store.update(_key(provider.slug), on_success, STATE_TTL)
        _local_forget(provider)
    elif outcome == FAILURE:
        store.update(_key(provider.slug), on_failure, STATE_TTL)
        _local_forget(provider)
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
    _local_forget(provider)
