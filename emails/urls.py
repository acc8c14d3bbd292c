"""emails routes under /api/v1/ (contract paths: no trailing slash)."""

import re

from django.urls import path, register_converter

from emails import views


class EmailIdConverter:
    """`em_` and 24 lower-case hex digits, as `emails.models.new_email_id` makes them: anything
    else is a 404 from the resolver and never reaches the database."""

    regex = "em_[0-9a-f]{24}"
    pattern = re.compile(regex)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(EmailIdConverter, "email_id")

urlpatterns = [
    path("emails", views.EmailListCreate.as_view(), name="emails"),
    path("emails/<email_id:email_id>", views.EmailDetail.as_view(), name="email-detail"),
]
