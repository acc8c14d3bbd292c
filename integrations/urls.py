"""Root-level operational URLs owned by the integrations core."""

urlpatterns: list = []
