"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set (an empty directory, cleared before each start),
/metrics adds up every worker; a dead worker's live gauges are dropped here.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
timeout = 60
graceful_timeout = 30
# Log lines of the app are JSON on stdout; gunicorn's access log would be a second format.
accesslog = None


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
