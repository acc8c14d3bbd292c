"""SendGrid."""

from integrations.kinds.base import Kind

KIND = Kind(name="sendgrid", label="SendGrid", capabilities=frozenset())
