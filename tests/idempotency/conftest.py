from tests.payments.conftest import CHARGE, fake_provider, pay_provider, post_charge  # noqa: F401
