"""How big each function is on 2nd gen: its memory, its vCPUs, and how many exports one
instance may run at once (docs/size-and-time.md, "Memory"); the sizes 1st gen takes."""

from __future__ import annotations

import re

from deploy.options import UsageError, Values

GEN1_MEMORY = ("128MB", "256MB", "512MB", "1024MB", "2048MB", "4096MB", "8192MB")
# What one action_execute instance holds (docs/size-and-time.md, "Memory"): idle, 81 MiB measured
# (BENCHMARKS.md) rounded up for the platform's share; and each export at once, at most 128 MiB
# over idle whatever the request (SECURITY.md: its pushed body, up to 32 MiB, and the conversion,
# about 40 MiB, with room to spare). --concurrency is refused where the memory holds fewer.
IDLE_MIB, EXPORT_MIB = 128, 128
EXECUTE_CPU = "1"  # a whole vCPU on 2nd gen: the workbook's deflate runs on a second thread


def check_memory(flag: str, value: str, gen1: bool) -> None:
    if value in GEN1_MEMORY or (not gen1 and re.fullmatch(r"[1-9][0-9]*(Mi|Gi|MB|GB)", value)):
        return
    if not gen1:
        raise UsageError(f"{flag} '{value}' is not a memory size (e.g. 512MB, 768Mi, 1Gi)")
    raise UsageError(
        f"{flag} '{value}' is not a 1st gen memory size (one of: {' '.join(GEN1_MEMORY)}; "
        "2nd gen takes others)"
    )


def mebibytes(value: str) -> int:
    """A checked memory size in MiB (MB and GB taken as gcloud takes them for functions: MiB, GiB)."""
    number = int(re.sub(r"[^0-9]", "", value))
    return number * 1024 if value.endswith(("Gi", "GB")) else number


def most_exports(memory: str) -> int:
    """How many exports at once an instance of `memory` holds (IDLE_MIB, EXPORT_MIB)."""
    return max(0, (mebibytes(memory) - IDLE_MIB) // EXPORT_MIB)


def concurrency(v: Values) -> int:
    """--concurrency, checked against action_execute's memory (1st gen runs one at a time)."""
    raw = v["concurrency"]
    if not re.fullmatch(r"[1-9][0-9]{0,3}", raw):
        raise UsageError(f"--concurrency '{raw}' must be a whole number from 1 to 1000")
    wanted, memory = int(raw), v["execute_memory"]
    if wanted > 1 and (v.on("gen1") or v.on("single")):
        where = (
            "1st gen runs one request per instance"
            if v.on("gen1")
            else ("--single sets its own from --service-cpu")
        )
        raise UsageError(f"--concurrency={wanted} applies to 2nd gen functions only ({where})")
    held = most_exports(memory)
    if wanted > max(held, 1):
        need = IDLE_MIB + wanted * EXPORT_MIB
        raise UsageError(
            f"--concurrency={wanted} needs --execute-memory of at least {need}Mi: each export at "
            f"once may hold {EXPORT_MIB} MiB beyond the instance's {IDLE_MIB} MiB, and {memory} "
            f"holds {held} (docs/size-and-time.md, Memory)"
        )
    return wanted
