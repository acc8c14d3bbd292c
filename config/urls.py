"""URL map. Contract paths: /api/v1/, /webhooks/<slug>/, /health/*, /metrics."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import errors, health

# Most requests are webhook deliveries: their pattern is tried first.
urlpatterns = [
    path("webhooks/", include("webhooks.urls")),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/v1/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("integrations.urls")),
    # Last: what no pattern above took under a machine prefix is a JSON 404, in
    # development too (Django's debug 404 page is HTML and bypasses handler404).
    re_path(r"^(?:api|webhooks|health)/", errors.machine_not_found, name=errors.MACHINE_NOT_FOUND),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
