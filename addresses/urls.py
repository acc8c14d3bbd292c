"""addresses routes under /api/v1/ (contract paths: no trailing slash)."""

from django.urls import path, re_path

from addresses import views

# Job ids are `avb_` + 24 hex digits (addresses.models.new_job_id): anything else is a 404
# from the resolver, before the database.
_JOB = r"(?P<job_id>avb_[0-9a-f]{24})"

urlpatterns = [
    path("addresses/verify", views.Verify.as_view(), name="addresses-verify"),
    path("addresses/verify-batch", views.BatchCreate.as_view(), name="addresses-verify-batch"),
    re_path(rf"^addresses/verify-batch/{_JOB}$", views.BatchDetail.as_view(), name="addresses-verify-batch-detail"),
    re_path(rf"^addresses/verify-batch/{_JOB}/results$", views.BatchResults.as_view(),
            name="addresses-verify-batch-results"),
]
