"""gunicorn settings for the one-service shape: `gunicorn --config gunicorn.conf.py app:app`.

Read from the environment so one image fits Cloud Run and your own server:
  PORT              port to listen on (default 8080; Cloud Run sets it)
  LISTEN_HOST       address to listen on (default 0.0.0.0, every interface of the container;
                    127.0.0.1 behind a reverse proxy on the same host)
  WEB_CONCURRENCY   worker processes (default 2): one per CPU; each holds its own settings
  GUNICORN_THREADS  threads per worker (default 4): concurrent exports per worker
An export spends most of its time waiting on Looker's download, the GCS upload and Pub/Sub, so
threads (gthread) keep a CPU busy; processes add CPUs and isolate a crash. Each concurrent export
holds up to MAX_REQUEST_BYTES of pushed body (32 MiB) and one upload chunk (8 MiB): size memory
for WEB_CONCURRENCY x GUNICORN_THREADS of them (Cloud Run: --concurrency to the same product).
"""

from __future__ import annotations

import os


def _number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number >= 1, got {raw!r}")
    return int(raw)


port = _number("PORT", 8080)
host = os.environ.get("LISTEN_HOST", "").strip() or "0.0.0.0"  # noqa: S104 - a container's port
bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]

worker_class = "gthread"
workers = _number("WEB_CONCURRENCY", 2)
threads = _number("GUNICORN_THREADS", 4)

# With gthread workers, `timeout` is a heartbeat: the worker's main loop reports every second
# while its threads run requests, so a 20-minute export is never cut by it; only a hung worker
# is. How long an export may take is bounded by its own deadlines (DOWNLOAD_TIMEOUT_SECONDS...)
# and by whatever fronts the service (Cloud Run --timeout, a proxy's read timeout).
timeout = 120
# On SIGTERM (a restart, `docker stop -t 600`), exports in flight get this long to finish.
graceful_timeout = 600
# Behind a load balancer or proxy that reuses connections: outlive its idle timeout.
keepalive = 75

# Settings load in each worker after the fork, and the Google clients (gRPC) are made there:
# nothing is shared across a fork.
preload_app = False
# The heartbeat file on memory, not on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# No control socket (gunicorn 25.1+ makes one under $HOME by default): the container user has no
# home, and nothing manages the service through it. Older gunicorns ignore the setting.
control_socket_disable = True

# The app writes JSON log lines to stdout; gunicorn's own messages go to stderr. No access log:
# Cloud Run and proxies log requests, and the app logs each delivery with its outcome.
accesslog = None
errorlog = "-"
loglevel = "info"
