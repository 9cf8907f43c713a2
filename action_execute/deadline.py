"""The soft deadline: stop an export cleanly before the platform kills the function.

A Cloud Function past its timeout is killed and Looker gets a non-JSON error; the upload would be
left to expire. Below FUNCTION_TIMEOUT_SECONDS the export stops instead: the data stream raises,
the upload is cancelled (nothing half-written, nothing announced), and Looker is told how far it
got and what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.errors import ActionError

# What is kept back for cancelling the upload and answering Looker.
MAX_MARGIN = 30.0


class DeadlineExceeded(ActionError):
    status = 504


@dataclass(frozen=True)
class Deadline:
    timeout: float | None  # the platform's, in seconds; None: no soft deadline
    started: float

    @classmethod
    def start(cls, timeout: float | None) -> Deadline:
        return cls(timeout, time.monotonic())

    @property
    def seconds(self) -> float | None:
        """How long an export may run: 90% of the timeout, at most 30 s short of it."""
        if self.timeout is None:
            return None
        return self.timeout - min(MAX_MARGIN, self.timeout / 10)

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        return max(0.0, self.started + self.seconds - time.monotonic())

    def passed(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def guard(self, chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
        """`chunks`, stopped at the deadline; a failure there (a download cut at the deadline)
        becomes the deadline's own error, which says how much of `what` was read."""
        read = 0
        try:
            for chunk in chunks:
                read += len(chunk)
                if self.passed():
                    raise self._error(read, what)
                yield chunk
        except ActionError:
            if self.passed():
                raise self._error(read, what) from None
            raise

    def _error(self, read: int, what: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"The export was stopped after {self.seconds:.0f} s, below the function's "
            f"{self.timeout:.0f} s timeout: {read:,} bytes of the {what} had been read, and "
            "nothing was stored. Send less data (filters, fewer rows), or deploy with a longer "
            "timeout (deploy.sh --gen2 allows up to 3600 s)."
        )
