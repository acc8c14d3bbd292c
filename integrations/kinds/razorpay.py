"""Razorpay: HTTP basic with the key id and secret; webhooks signed with X-Razorpay-Signature.

No adapter yet: its providers only send webhooks to this service.
"""

from integrations.kinds.base import Kind
from integrations.models import AuthScheme
from webhooks.schemes.razorpay import RazorpayScheme

KIND = Kind(
    name="razorpay",
    label="Razorpay",
    auth_scheme=AuthScheme.BASIC,
    webhook_scheme=RazorpayScheme(),
)
