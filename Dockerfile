# The action as one service (app.py under gunicorn): for your own server, and what
# `deploy.sh --single` builds on Cloud Run. Build context: the repository root or the staged
# bundle (scripts/stage.sh OUT single); both hold the same files.
#   docker build -t looker-xlsx-action . && docker run -p 8080:8080 --env-file action.env looker-xlsx-action
# The deployed runtime's Python (python313), pinned by full tag (patch release + Debian release).
# Not by digest: the digest could not be resolved on the machine this was written on (no registry
# access); add @sha256:... after `docker buildx imagetools inspect python:3.13.13-slim-trixie`.
FROM python:3.13.13-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    TRUSTED_PROXY_HOPS=0
# TRUSTED_PROXY_HOPS=0: on your own server no header is believed; the caller is the connection's
# peer. Behind selfhost/nginx.conf set it to 1. deploy.sh --single sets it for Cloud Run (1).

WORKDIR /app

# Runtime requirements only (not requirements-dev.txt), pinned with hashes, in their own layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY shared/ shared/
COPY action_list/ action_list/
COPY action_form/ action_form/
COPY action_execute/ action_execute/
COPY app.py gunicorn.conf.py ./

# An unprivileged user that owns nothing it runs: the code stays root-owned and read-only to it.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin action
USER 10001

EXPOSE 8080
# gunicorn.conf.py reads PORT (Cloud Run sets it), workers and threads from the environment.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:app"]
