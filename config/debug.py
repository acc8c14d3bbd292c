"""Error reports hide sensitive variables even with DEBUG on (Django only does when it is off)."""

from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Honours @sensitive_variables / @sensitive_post_parameters on the DEBUG page too."""

    def is_active(self, request):
        return True
