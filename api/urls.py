"""/api/v1/ routes. Domain apps own their own url modules, included here."""

from django.urls import include, path

from api import views

urlpatterns = [
    path("whoami", views.whoami, name="api-whoami"),
    path("", include("payments.urls")),
    path("", include("emails.urls")),
    path("", include("addresses.urls")),
]
