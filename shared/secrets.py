"""Reads a Secret Manager secret version; the client library is imported only when one is configured."""

from __future__ import annotations


def read_secret(version: str) -> str:
    """Return the payload of `projects/P/secrets/S/versions/V` as text."""
    from google.cloud import secretmanager  # heavy: only where a secret is configured

    client = secretmanager.SecretManagerServiceClient()
    response = client.access_secret_version(request={"name": version}, timeout=10.0)
    return response.payload.data.decode("utf-8")
