"""Payment routes under /api/v1/ (contract paths: no trailing slash)."""

import re

from django.urls import path, register_converter

from payments import views


class ChargeIdConverter:
    """`ch_` and 24 lower-case hex digits, as `payments.models.new_charge_id` makes them.

    Anything else cannot name a charge, so it is a 404 from the URL resolver: a NUL or an
    over-long id never reaches the database (PostgreSQL refuses NUL in text), the idempotency
    layer or authentication. drf-spectacular reads `regex` into the path parameter's pattern.
    """

    regex = "ch_[0-9a-f]{24}"
    pattern = re.compile(regex)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ChargeIdConverter, "charge_id")

urlpatterns = [
    path("charges", views.ChargeListCreate.as_view(), name="charges"),
    path("charges/<charge_id:charge_id>", views.ChargeDetail.as_view(), name="charge-detail"),
    path("charges/<charge_id:charge_id>/refunds", views.RefundCreate.as_view(), name="charge-refunds"),
]
