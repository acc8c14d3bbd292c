"""What a provider kind is: everything the service knows about one family of providers.

A kind module (one per kind, in this package) builds one `Kind` and names it `KIND`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kind:
    """A provider kind. `capabilities` are what its providers can do for the service's
    apps ("payments" today; "email", "geocoding", "records" next): webhook handlers and
    adapters are looked up by capability."""

    name: str
    label: str
    capabilities: frozenset[str] = field(default_factory=frozenset)
