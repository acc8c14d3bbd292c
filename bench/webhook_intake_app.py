"""WSGI app for bench/webhook_intake.py: the real service plus a bare insert-one-row view.

Served by gunicorn as `bench.webhook_intake_app:application` from the project root. The bare
view is the baseline: one INSERT of the body, the same answer. BENCH_MIDDLEWARE picks the
process's middleware: unset, the service's own stack; `none`, no middleware at all (the
issue's baseline); `request-id`, only the request-id middleware (a what-if: the webhook
path without the admin's session, auth, CSRF, messages and lockout middleware).
BENCH_SERVER_SIDE_BINDING=1 turns on Django's documented `server_side_binding` option of
the PostgreSQL backend (another what-if: parameters sent apart from the SQL text).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings  # noqa: E402

settings.ROOT_URLCONF = __name__
_MIDDLEWARE = {"none": [], "request-id": ["config.request_id.RequestIDMiddleware"]}
if os.environ.get("BENCH_MIDDLEWARE"):
    settings.MIDDLEWARE = _MIDDLEWARE[os.environ["BENCH_MIDDLEWARE"]]

if os.environ.get("BENCH_SERVER_SIDE_BINDING") == "1":
    settings.DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()  # sets Django up before the URL modules import models
from django.db import connection  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from config import urls as config_urls  # noqa: E402


@csrf_exempt
def bare_insert(request):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare_insert (body, received_at) VALUES (%s, now())", [request.body])
    return JsonResponse({"received": True, "duplicate": False})


# The service's own patterns, not an include() of them: an include would add a resolver
# level to every service path and not to the bare one.
urlpatterns = [path("bench/bare-insert/", bare_insert), *config_urls.urlpatterns]
