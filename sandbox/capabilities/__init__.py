"""What the sandbox can do, one module each; the core serves every capability listed here.

Adding one (email, geocoding, ...) is adding its module, copied from the closest existing
one, and one line below. docs/sandbox.md says how.
"""

from __future__ import annotations

from sandbox.capabilities import email, geocoding, payments, records
from sandbox.capabilities.base import Capability

CAPABILITIES: tuple[type[Capability], ...] = (
    payments.Payments,
    records.Records,
    geocoding.Geocoding,
    email.Email,
)
