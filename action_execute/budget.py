"""One time budget per export: each step's share of the platform's timeout, so that Looker always
gets its JSON answer before the platform kills the call.

A Cloud Function past its timeout is killed and Looker gets a non-JSON error, even for an export
that was stored. So FUNCTION_TIMEOUT_SECONDS is laid out, from the request's arrival, as one
timeline; each step must be done by the point where the reserves of the steps after it begin:

    | data stream: download, workbook, upload chunks | finalise | publish | e-mail | answer |
    0                                                                             end  timeout

- answer: 10% of the timeout, at most 30 s, kept for cancelling an upload and answering Looker;
- finalise (the upload's last chunk, reading the object back): 10%, at most 30 s;
- publish (the Pub/Sub announcement): 10%, at most 30 s;
- e-mail (only when a notice will be sent): 5%, at most 20 s.

Time a step leaves unused passes to the steps after it. A step that runs out ends the way its
failure always ends (README "Size and time"), and the log names the step. With no timeout (a
local run) there is no budget, and each step keeps its own cap.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.errors import ActionError

# The steps, in order, and the share of the timeout each one after the data stream keeps back:
# (fraction of the timeout, at most this many seconds).
STEPS = ("stream", "finalise", "publish", "email")
RESERVES = {"finalise": (0.10, 30.0), "publish": (0.10, 30.0), "email": (0.05, 20.0)}
ANSWER = (0.10, 30.0)
SHORTEST = 0.05  # seconds: what a step that has run out still gets to fail cleanly


class OutOfTime(ActionError):
    """The data stream reached its share of the budget; nothing was stored."""

    status = 504


def shown(seconds: float) -> str:
    """Seconds as a message says them: whole from 10 s up, else to a tenth."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}".removesuffix(".0")


def _share(timeout: float, share: tuple[float, float]) -> float:
    fraction, most = share
    return min(most, timeout * fraction)


@dataclass(frozen=True)
class Budget:
    timeout: float | None  # the platform's, in seconds; None: no budget
    started: float  # time.monotonic() when the request arrived
    email: bool = False  # an e-mail notice follows: its reserve is kept back

    @classmethod
    def start(cls, timeout: float | None, *, email: bool = False) -> Budget:
        return cls(timeout, time.monotonic(), email)

    def _reserve(self, step: str) -> float:
        assert self.timeout is not None
        if step == "email" and not self.email:
            return 0.0
        return _share(self.timeout, RESERVES[step])

    def ends(self, step: str) -> float | None:
        """When `step` must be done (time.monotonic()), leaving the later steps their reserves."""
        if self.timeout is None:
            return None
        later = STEPS[STEPS.index(step) + 1 :]
        answer = _share(self.timeout, ANSWER)
        return self.started + self.timeout - answer - sum(self._reserve(s) for s in later)

    def left(self, step: str, cap: float) -> float:
        """Seconds `step` may still take: its own `cap`, cut to what the budget has left."""
        ends = self.ends(step)
        if ends is None:
            return cap
        return max(SHORTEST, min(cap, ends - time.monotonic()))

    def answer_by(self) -> float | None:
        """When Looker must have its answer: the end of the last step."""
        return self.ends(STEPS[-1])

    def last_moment(self) -> float | None:
        """The latest an answer may start: halfway through the answer's share, a safety net
        for a step that overran its own (the one service's keep-alive answers there)."""
        if self.timeout is None:
            return None
        return self.started + self.timeout - _share(self.timeout, ANSWER) / 2

    def overran(self) -> bool:
        last = self.last_moment()
        return last is not None and time.monotonic() >= last

    def passed(self, step: str) -> bool:
        ends = self.ends(step)
        return ends is not None and time.monotonic() >= ends

    def guard(self, chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
        """`chunks`, stopped when the data stream's share ends; a failure there (a download cut
        at that point) becomes the budget's own error, which says how much of `what` was read."""
        read = 0
        try:
            for chunk in chunks:
                read += len(chunk)
                if self.passed("stream"):
                    raise self._stopped(read, what)
                yield chunk
        except ActionError:
            if self.passed("stream"):
                raise self._stopped(read, what) from None
            raise

    def _stopped(self, read: int, what: str) -> OutOfTime:
        assert self.timeout is not None
        ends = self.ends("stream")
        assert ends is not None
        return OutOfTime(
            f"The export was stopped after {shown(ends - self.started)} s, below the function's "
            f"{self.timeout:.0f} s timeout (the rest is kept for storing, announcing and "
            f"answering): {read:,} bytes of the {what} had been read, and nothing was stored. "
            "Send less data (filters, fewer rows), or deploy with a longer timeout "
            "(deploy.sh --gen2 allows up to 3600 s)."
        )
