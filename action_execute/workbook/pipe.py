"""Moving bytes: the sink as zipfile sees it (forward only), and the second thread that deflates
sheet XML into its part while the first builds the next rows."""

from __future__ import annotations

import contextvars
import io
import queue
import threading
from itertools import groupby
from operator import itemgetter
from typing import IO, Final

PIPE_DEPTH: Final = 8
"""Batches queued for the deflating thread (typically 250 KiB each, at most ~1 MiB)."""
MERGE_BYTES: Final = 2 << 20
"""The deflating thread joins queued batches into one write up to about this many bytes."""


class ForwardOnly:
    """The sink as zipfile sees it: counts bytes for tell(), cannot seek, never flushes.

    Refusing seek makes zipfile stream (data descriptors instead of rewriting headers). flush()
    is a no-op because a GCS BlobWriter refuses it; the caller finalises by closing the sink.
    """

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink: IO[bytes] | None = sink
        self._position = 0

    def write(self, data: bytes) -> int:
        if self._sink is not None:
            self._sink.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("the workbook sink is write-only")

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        """Drop every later write."""
        self._sink = None


class Pipe:
    """A second thread that deflates sheet XML into its part and the sink.

    zlib (and the socket writes of an upload) release the GIL, so deflating on the second core
    while this thread builds the next rows' XML takes the deflate off the critical path. The
    thread runs in the caller's context (contextvars: log fields), writes in order, and an
    error it meets is raised again by the caller's next `write` or `wait`.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[IO[bytes], bytes] | None] = queue.Queue(PIPE_DEPTH)
        self._error: BaseException | None = None
        self._abandoned = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="xlsx-deflate", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            size = 0
            # Whatever else is already waiting goes in the same write: each write (crc32, then
            # deflate) gives up the GIL twice and waits for it back, so when this thread falls
            # behind, fewer and larger writes let it catch up.
            while (last := items[-1]) is not None and size < MERGE_BYTES:
                size += len(last[1])
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                writes = [item for item in items if item is not None]
                if self._error is None and not self._abandoned:
                    for part, group in groupby(writes, key=itemgetter(0)):
                        part.write(b"".join(data for _, data in group))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                for _ in items:
                    self._queue.task_done()
            if items[-1] is None:
                return

    def write(self, part: IO[bytes], data: bytes) -> None:
        self._raise_error()
        self._queue.put((part, data))

    def wait(self) -> None:
        """Return once every write is done, raising what the thread met."""
        self._queue.join()
        self._raise_error()

    def abandon(self) -> None:
        """Drop the writes still queued and wait until the thread is idle."""
        self._abandoned = True
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
