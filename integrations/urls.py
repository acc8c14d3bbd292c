"""Root-level operational URLs owned by the integrations core."""

from django.urls import path

from integrations.metrics import metrics_view

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
]
