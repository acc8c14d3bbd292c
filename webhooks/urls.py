"""/webhooks/<provider slug>/ intake."""

urlpatterns: list = []
