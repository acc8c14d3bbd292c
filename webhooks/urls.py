"""/webhooks/<provider slug>/ intake."""

from django.urls import path

from webhooks import views

urlpatterns = [
    path("<slug:slug>/", views.receive, name="webhook-receive"),
]
