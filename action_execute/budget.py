"""One time budget per export: each step's share of the platform's timeout, so that Looker always
gets its JSON answer before the platform kills the call.

A Cloud Function past its timeout is killed and Looker gets a non-JSON error, even for an export
that was stored. So FUNCTION_TIMEOUT_SECONDS is laid out, from the request's arrival, as one
timeline; each step must be done by the point where the reserves of the steps after it begin:

    | data stream: download, workbook, upload chunks | finalise | publish | e-mail | answer |
    0                                                                             end  timeout

The stream (`Step.STREAM`) has what the others leave; `RESERVES` holds each later step's share
(finalise: the upload's last chunk and the read-back; publish: the Pub/Sub announcement; e-mail:
only when a notice will be sent), and `ANSWER` what is kept for cancelling an upload and
answering Looker. Time a step leaves unused passes to the steps after it. A step that runs out
ends the way its failure always ends (docs "Size and time"), and the log names the step. With no
timeout (a local run) there is no budget, and each step keeps its own cap.

`seconds_left` is the one way any step counts the time it still has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from shared.errors import ActionError
from shared.settings import MAX_FUNCTION_TIMEOUT


class Step(StrEnum):
    """The export's steps, in order (their values are what the logs say: `"cut": "publish"`)."""

    STREAM = "stream"
    FINALISE = "finalise"
    PUBLISH = "publish"
    EMAIL = "email"


STEPS = tuple(Step)
# The share of the timeout each step after the data stream keeps back, and the answer's:
# (fraction of the timeout, at most this many seconds).
RESERVES = {Step.FINALISE: (0.10, 30.0), Step.PUBLISH: (0.10, 30.0), Step.EMAIL: (0.05, 20.0)}
ANSWER = (0.10, 30.0)
SHORTEST = 0.1  # seconds: what a step that has run out still gets, to fail cleanly


def seconds_left(until: float | None, cap: float) -> float:
    """Seconds until `until` (time.monotonic()), at most `cap` and at least SHORTEST; `cap`
    where there is no end (no budget)."""
    if until is None:
        return cap
    return max(SHORTEST, min(cap, until - time.monotonic()))


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

    def sending_email(self, email: bool) -> Budget:
        """The same budget (same start), keeping the e-mail's reserve back when one is sent."""
        return replace(self, email=email)

    def _reserve(self, step: Step) -> float:
        assert self.timeout is not None
        if step == Step.EMAIL and not self.email:
            return 0.0
        return _share(self.timeout, RESERVES[step])

    def ends(self, step: Step) -> float | None:
        """When `step` must be done (time.monotonic()), leaving the later steps their reserves."""
        if self.timeout is None:
            return None
        later = STEPS[STEPS.index(step) + 1 :]
        answer = _share(self.timeout, ANSWER)
        return self.started + self.timeout - answer - sum(self._reserve(s) for s in later)

    def left(self, step: Step, cap: float) -> float:
        """Seconds `step` may still take: its own `cap`, cut to what the budget has left."""
        return seconds_left(self.ends(step), cap)

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

    def passed(self, step: Step) -> bool:
        ends = self.ends(step)
        return ends is not None and time.monotonic() >= ends

    def guard(self, chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
        """`chunks`, stopped when the data stream's share ends; a failure there (a download cut
        at that point) becomes the budget's own error, which says how much of `what` was read."""
        read = 0
        try:
            for chunk in chunks:
                read += len(chunk)
                if self.passed(Step.STREAM):
                    raise self._stopped(read, what)
                yield chunk
        except ActionError:
            if self.passed(Step.STREAM):
                raise self._stopped(read, what) from None
            raise

    def _stopped(self, read: int, what: str) -> OutOfTime:
        assert self.timeout is not None
        ends = self.ends(Step.STREAM)
        assert ends is not None
        return OutOfTime(
            f"The export was stopped after {shown(ends - self.started)} s, below the function's "
            f"{self.timeout:.0f} s timeout (the rest is kept for storing, announcing and "
            f"answering): {read:,} bytes of the {what} had been read, and nothing was stored. "
            "Send less data (filters, fewer rows), or give the function a longer timeout "
            f"(FUNCTION_TIMEOUT_SECONDS with the platform's; deploy's --execute-timeout, up to "
            f"{MAX_FUNCTION_TIMEOUT} s with --gen2)."
        )
