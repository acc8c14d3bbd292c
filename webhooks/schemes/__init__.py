"""Signature schemes by provider kind: `scheme_for(kind)`."""

from __future__ import annotations

from webhooks.schemes.base import Headers, ParsedEvent, Scheme
from webhooks.schemes.github import GitHubScheme
from webhooks.schemes.razorpay import RazorpayScheme
from webhooks.schemes.sendgrid import SendGridScheme
from webhooks.schemes.standard import StandardScheme
from webhooks.schemes.stripe import StripeScheme

SCHEMES: dict[str, Scheme] = {
    "standard": StandardScheme(),
    "sandbox": StandardScheme(),
    "stripe": StripeScheme(),
    "razorpay": RazorpayScheme(),
    "github": GitHubScheme(),
    "sendgrid": SendGridScheme(),
}


def scheme_for(kind: str) -> Scheme | None:
    """The scheme that verifies webhooks of providers of `kind`; None if they send none."""
    return SCHEMES.get(kind)


__all__ = ["SCHEMES", "Headers", "ParsedEvent", "Scheme", "scheme_for"]
