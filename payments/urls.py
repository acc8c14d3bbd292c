"""Payment routes under /api/v1/ (contract paths: no trailing slash)."""

from django.urls import path

from payments import views

urlpatterns = [
    path("charges", views.ChargeListCreate.as_view(), name="charges"),
    path("charges/<str:charge_id>", views.ChargeDetail.as_view(), name="charge-detail"),
    path("charges/<str:charge_id>/refunds", views.RefundCreate.as_view(), name="charge-refunds"),
]
