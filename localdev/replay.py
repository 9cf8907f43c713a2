"""`./dev replay FILE`: send a payload file (a capture, or one of samples/payloads) to a function.

The headers and body come from the file; the token comes from LOOKER_ACTION_TOKEN in the
environment, never from the file. A capture's one-time download URL is redacted, so it can be
swapped for a local file (served here, on 127.0.0.1, for the duration) or for another URL. Prints
the function's answer: the HTTP status and the JSON. Exit status 0 when the answer is a success.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localdev.download_server import DownloadServer
from shared.capture import REDACTED, TRANSPORT_HEADERS

# Where `./dev serve` puts each function.
SERVE_PORTS = {"action_list": 8081, "action_form": 8082, "action_execute": 8083}
DEFAULT_DOWNLOAD_PORT = 8090
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ReplayError(Exception):
    """A reason not to send at all (exit status 2)."""


def function_for(path: Path, body: Any) -> str:
    """The function a payload is for: named in a capture's file name, else told by its content
    (the listing's body is empty; a form request carries no data, neither an attachment nor a
    download URL; an execute request does)."""
    named = next((f for f in SERVE_PORTS if f in path.name), None)
    if named is not None:
        return named
    if not body:
        return "action_list"
    plan = body.get("scheduled_plan") if isinstance(body, dict) else None
    download = isinstance(plan, dict) and plan.get("download_url")
    if isinstance(body, dict) and not body.get("attachment") and not download:
        return "action_form"
    return "action_execute"


def default_url(path: Path, body: Any) -> str:
    return f"http://127.0.0.1:{SERVE_PORTS[function_for(path, body)]}/"


def load(path: Path) -> tuple[dict[str, str], Any]:
    """The file's headers and body."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"{path}: not a readable payload file ({exc})") from None
    if not isinstance(document, dict) or "body" not in document:
        raise ReplayError(f"{path}: expected an object with 'headers' and 'body'")
    headers = document.get("headers") or {}
    if not isinstance(headers, dict):
        raise ReplayError(f"{path}: 'headers' must be an object")
    return {str(k): str(v) for k, v in headers.items()}, document["body"]


def request_headers(from_file: Mapping[str, str], token: str, body: Any) -> dict[str, str]:
    """The file's headers minus its Authorization (a placeholder at best) and transport headers."""
    headers = {
        k: v
        for k, v in from_file.items()
        if k.lower() != "authorization" and k.lower() not in TRANSPORT_HEADERS
    }
    if not isinstance(body, str) and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    headers["Authorization"] = f'Token token="{token}"'
    return headers


def encode(body: Any) -> bytes:
    """A text body (a capture of a non-JSON request) goes as it was; anything else as JSON."""
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def with_download_url(body: Any, url: str) -> tuple[dict[str, Any], bool]:
    """A copy of `body` whose dashboard comes from `url`; True when a pushed attachment was dropped
    (the function reads an attachment first, so it has to go for the URL to be used)."""
    plan = body.get("scheduled_plan") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(plan, dict):
        raise ReplayError("the payload has no scheduled_plan to put a download URL in")
    swapped = {**body, "scheduled_plan": {**plan, "download_url": url}}
    dropped = swapped.get("attachment") is not None
    if dropped:
        swapped["attachment"] = None
    return swapped, dropped


def redacted_download_url(body: Any) -> bool:
    plan = body.get("scheduled_plan") if isinstance(body, dict) else None
    url = plan.get("download_url") if isinstance(plan, dict) else None
    return isinstance(url, str) and REDACTED in url


def post(url: str, headers: Mapping[str, str], data: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            raise ReplayError(
                f"nothing listens at {url}: start the action first (./dev serve, or ./dev demo "
                "--keep, which prints its URLs), or give the right one with --url"
            ) from None
        raise


def show(status: int, answer: bytes) -> bool:
    """Print the answer; True when it is a success."""
    print(f"HTTP {status}")
    try:
        parsed = json.loads(answer)
    except (UnicodeDecodeError, json.JSONDecodeError):
        print(answer.decode("utf-8", errors="replace"))
        return False
    print(json.dumps(parsed, indent=2, ensure_ascii=False))
    looker = parsed.get("looker") if isinstance(parsed, dict) else None
    refused = isinstance(looker, dict) and looker.get("success") is False
    return 200 <= status < 300 and not refused


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev replay", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("file", type=Path, help="a payload file: a capture or samples/payloads/*")
    parser.add_argument(
        "--url",
        help="the function to send it to (default: the ./dev serve port of the function the file "
        "is for: named in a capture's file name, else told by its content; with ./dev serve "
        "--single, http://127.0.0.1:8080/, /form or /execute)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--download-file",
        type=Path,
        help="serve this csv_zip at a one-time URL on 127.0.0.1 and put that URL in the payload "
        "(local functions only; they must allow 127.0.0.1:PORT in LOOKER_DOWNLOAD_HOSTS and "
        "have ALLOW_HTTP_DOWNLOADS=1)",
    )
    source.add_argument("--download-url", help="put this download URL in the payload")
    parser.add_argument(
        "--download-port",
        type=int,
        default=DEFAULT_DOWNLOAD_PORT,
        help=f"port for --download-file (default {DEFAULT_DOWNLOAD_PORT}; 0: any free port)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    token = os.environ.get("LOOKER_ACTION_TOKEN", "").strip()
    try:
        if not token:
            raise ReplayError(
                "set LOOKER_ACTION_TOKEN to the function's token (it is never read from the file)"
            )
        file_headers, body = load(args.file)
        url = args.url or default_url(args.file, body)
        if args.download_file is not None:
            if urlsplit(url).hostname not in LOOPBACK:
                raise ReplayError(
                    "--download-file is served on 127.0.0.1, which a deployed function cannot "
                    "reach; put the zip where it can and use --download-url"
                )
            try:
                data = args.download_file.read_bytes()
            except OSError as exc:
                raise ReplayError(f"{args.download_file}: {exc.strerror or exc}") from None
            with DownloadServer(args.download_port) as downloads:
                download_url = downloads.add(data, args.download_file.name)
                body = _swapped(body, download_url)
                print(f"serving {args.download_file} at {downloads.url}/download/... (one use)")
                ok = _send(url, file_headers, body, token, args.timeout)
                print(f"download: fetched {downloads.fetch_count(download_url)} time(s)")
                return 0 if ok else 1
        if args.download_url is not None:
            body = _swapped(body, args.download_url)
        elif redacted_download_url(body):
            print(
                "note: the download URL is redacted (a capture); the function cannot fetch it. "
                "Pass --download-file or --download-url.",
                file=sys.stderr,
            )
        return 0 if _send(url, file_headers, body, token, args.timeout) else 1
    except ReplayError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the function is not there, the port is taken...
        print(f"replay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _swapped(body: Any, download_url: str) -> dict[str, Any]:
    swapped, dropped = with_download_url(body, download_url)
    if dropped:
        print("note: the pushed attachment was dropped: the dashboard comes from the download URL")
    return swapped


def _send(url: str, file_headers: Mapping[str, str], body: Any, token: str, timeout: float) -> bool:
    print(f"POST {url}", flush=True)
    status, answer = post(url, request_headers(file_headers, token, body), encode(body), timeout)
    return show(status, answer)


if __name__ == "__main__":
    sys.exit(main())
