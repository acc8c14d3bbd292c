"""Providers and their encrypted, versioned credentials."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.crypto import EncryptedValue
from integrations.kinds import kind_choices


class AuthScheme(models.TextChoices):
    """How the outbound client authenticates; blank means the kind's default (see integrations.auth)."""

    DEFAULT = "", "Default for the kind"
    BEARER = "bearer", "Bearer token (api_key credential)"
    API_KEY_HEADER = "api_key_header", "API key in a header (api_key credential)"
    BASIC = "basic", "HTTP basic (basic_username + basic_password)"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"
    HMAC = "hmac", "HMAC request signing (signing_secret)"
    NONE = "none", "No authentication"


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"


slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,48}$", "Lower-case letters, digits and hyphens, starting with a letter or digit."
)


class Provider(models.Model):
    """A third-party service and the policy for every call made to it.

    Policy fields are read on every call, so an admin edit takes effect without a restart.
    """

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator],
                            help_text="Used in URLs, e.g. /webhooks/<slug>/.")
    name = models.CharField(max_length=100)
    # Choices read from integrations/kinds at run time: a new kind needs no migration.
    kind = models.CharField(max_length=20, choices=kind_choices)
    base_url = models.URLField(max_length=300)
    environment = models.CharField(max_length=20, choices=Environment.choices,
                                   default=Environment.SANDBOX,
                                   help_text="Selects which credentials are used.")
    enabled = models.BooleanField(default=True)

    connect_timeout = models.FloatField(default=3.05, validators=[MinValueValidator(0.1), MaxValueValidator(60)],
                                        help_text="Seconds to establish a connection.")
    read_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(300)],
                                     help_text="Seconds to wait for each read of the answer.")
    max_attempts = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(10)])
    backoff_base = models.FloatField(default=0.25, validators=[MinValueValidator(0), MaxValueValidator(60)],
                                     help_text="Seconds; backoff is uniform(0, min(max, base * 2**attempt)).")
    backoff_max = models.FloatField(default=5.0, validators=[MinValueValidator(0), MaxValueValidator(300)])
    deadline = models.FloatField(default=20.0, validators=[MinValueValidator(0.5), MaxValueValidator(600)],
                                 help_text="Seconds for the whole call, retries and waits included.")
    circuit_failure_threshold = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Consecutive failures that open the circuit.")
    circuit_open_seconds = models.FloatField(default=30.0, validators=[MinValueValidator(1), MaxValueValidator(3600)],
                                             help_text="How long the circuit stays open before a probe.")
    rate_limit_requests = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)],
                                                      help_text="Requests allowed per period (client side).")
    rate_limit_period = models.FloatField(default=1.0, validators=[MinValueValidator(0.01), MaxValueValidator(86400)],
                                          help_text="Seconds.")
    cache_ttl = models.PositiveIntegerField(default=300, help_text="Seconds cacheable GETs are kept; 0 disables.")
    auth_scheme = models.CharField(max_length=40, choices=AuthScheme.choices, default="", blank=True,
                                   help_text="Blank: the kind's default (bearer for most kinds).")
    auth_header_name = models.CharField(max_length=100, blank=True, default="",
                                        help_text="Header for the API-key scheme (default X-API-Key).")
    api_version = models.CharField(max_length=50, blank=True, default="",
                                   help_text="Sent in the API-version header when set; part of cache keys.")
    api_version_header = models.CharField(max_length=100, blank=True, default="",
                                          help_text="Header carrying the API version (default by kind, "
                                                    "e.g. Stripe-Version).")
    oauth_token_url = models.CharField(max_length=300, blank=True, default="",
                                       help_text="OAuth2 token endpoint: absolute, or a path under the base URL.")
    oauth_scope = models.CharField(max_length=300, blank=True, default="")
    email_from = models.CharField(
        max_length=320, blank=True, default="",
        help_text="Email providers: the sender when a request gives no `from`, e.g. "
                  "'Shop <no-reply@shop.example>'. Blank: requests must give one.")
    webhook_tolerance = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds a webhook timestamp may differ from now, either way.")

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def clean(self):
        if self.backoff_base > self.backoff_max:
            raise ValidationError({"backoff_base": "Must not exceed the maximum backoff."})
        if self.connect_timeout + self.read_timeout > self.deadline:
            raise ValidationError({"deadline": "Must leave room for at least one attempt (connect + read timeout)."})
        if self.auth_scheme == AuthScheme.OAUTH2_CLIENT_CREDENTIALS and not self.oauth_token_url:
            raise ValidationError({"oauth_token_url": "OAuth2 client credentials need the token endpoint."})


class CredentialPurpose(models.TextChoices):
    API_KEY = "api_key", "API key"
    OAUTH_CLIENT_ID = "oauth_client_id", "OAuth client id"
    OAUTH_CLIENT_SECRET = "oauth_client_secret", "OAuth client secret"
    BASIC_USERNAME = "basic_username", "HTTP basic username"
    BASIC_PASSWORD = "basic_password", "HTTP basic password"  # noqa: S105 - a label
    WEBHOOK_SECRET = "webhook_secret", "Webhook secret"  # noqa: S105
    SIGNING_SECRET = "signing_secret", "Request signing secret"  # noqa: S105
    WEBHOOK_PUBLIC_KEY = "webhook_public_key", "Webhook public key"


class CredentialQuerySet(models.QuerySet):
    def valid(self, at=None):
        """Credentials usable now: the current one and any still in its grace period."""
        at = at or timezone.now()
        return self.filter(Q(active_until__isnull=True) | Q(active_until__gt=at))

    def current(self):
        return self.filter(active_until__isnull=True)


class Credential(models.Model):
    """One version of one secret of a provider in one environment, encrypted at rest.

    The newest version has `active_until` empty; a rotation stamps the previous one with
    the end of its grace period. The plaintext is only reachable through `value`.
    """

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="credentials")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    purpose = models.CharField(max_length=40, choices=CredentialPurpose.choices)
    version = models.PositiveIntegerField()
    key_id = models.CharField(max_length=16, editable=False)
    ciphertext = models.TextField(editable=False)
    fingerprint = models.CharField(max_length=16, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    active_until = models.DateTimeField(null=True, blank=True,
                                        help_text="Empty for the current value; else valid until then.")

    value = EncryptedValue("key_id", "ciphertext")

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["provider", "environment", "purpose", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "environment", "purpose", "version"],
                                    name="credential_version_unique"),
            models.UniqueConstraint(fields=["provider", "environment", "purpose"],
                                    condition=Q(active_until__isnull=True),
                                    name="credential_one_current"),
        ]
        indexes = [models.Index(fields=["key_id"], name="credential_key_id")]

    def __str__(self) -> str:
        return f"{self.provider.slug}/{self.environment}/{self.purpose} v{self.version}"

    def __repr__(self) -> str:
        # Never the value: reprs end up in tracebacks and debug pages.
        return f"<Credential {self} fingerprint={self.fingerprint}>"

    @property
    def is_valid(self) -> bool:
        return self.active_until is None or self.active_until > timezone.now()


class OutboundCall(models.Model):
    """One call through the outbound client (all its attempts), for the admin. Never a secret:
    the path is stored without its query string and no header or body is kept."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="outbound_calls")
    operation = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    ok = models.BooleanField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=30, blank=True)
    attempts = models.PositiveSmallIntegerField()
    latency_ms = models.FloatField()
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["provider", "-created"], name="outbound_provider_created")]

    def __str__(self) -> str:
        outcome = self.status if self.ok else self.error_code
        return f"{self.method} {self.provider.slug}{self.path} -> {outcome}"


class SharedState(models.Model):
    """Cross-process state (circuit, token bucket, OAuth token) when the cache is not Redis.

    The database cache cannot do an atomic read-modify-write (its incr is get+set, and two
    add()s on an expired key both win), so integrations.shared_state locks these rows instead.
    """

    key = models.CharField(max_length=200, primary_key=True)
    value = models.JSONField(null=True, blank=True)
    expires = models.FloatField(default=0, help_text="Unix time after which the value is gone.")

    def __str__(self) -> str:
        return self.key
