"""The payments fixtures (a loopback fake provider behind `pay_provider`), shared with the fuzzer."""

from tests.payments.conftest import fake_provider, pay_provider  # noqa: F401 - pytest fixtures
