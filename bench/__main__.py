"""The benchmark: `python -m bench` (or `./dev bench`). See BENCHMARKS.md for results and targets.

Every measurement runs in its own child process, the kinds interleaved round by round so that a
ratio compares runs made under the same load; each figure is the median of `--runs` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.dashboards import SIZES, Size, write_zip
from bench.probe import Probe
from shared.integration import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "BENCHMARKS.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
MIB = 1 << 20
CAP_BYTES = 256 * MIB
CONVERSION_KINDS = ("ours", "floor", "pandas", "xlsxwriter")
ANCHOR_MODULES = {"pandas": "pandas", "xlsxwriter": "xlsxwriter"}
ANCHOR_MAX_ROWS = 1_048_575  # neither anchor continues a tile on a second sheet


@dataclass
class Runs:
    """The runs of one measurement; figures are medians."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return float(statistics.median(r[key] for r in self.results))

    @property
    def footprint(self) -> float:
        return float(statistics.median(r["peak_rss"] + r["peak_tmp"] for r in self.results))


ONE_CORE = "1core"
"""Suffix of a kind run pinned to one CPU (`taskset -c 0`), as a gen1 function has at most one."""
ONE_CORE_KINDS = ("ours", "floor", "pandas")


def child(
    kind: str, zip_path: Path, level: int, work: Path, *extra: str, pin: bool = False
) -> dict[str, Any]:
    """One conversion measurement in a fresh process with its own, watched, temp dir; `pin`:
    on one CPU only."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
    argv = [sys.executable, "-m", "bench.child", kind, str(zip_path), "--level", str(level)]
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    process = subprocess.Popen(
        [*argv, *extra],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with Probe(process.pid, tmp) as probe:
        out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{kind} failed ({process.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_tmp"] = probe.peak_tmp
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def available(kind: str) -> bool:
    module = ANCHOR_MODULES.get(kind)
    if module is None:
        return True
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def log(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# --- import times ------------------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
FUNCTION_ENV = {
    "LOOKER_ACTION_TOKEN": "bench-token",
    "ACTION_FORM_URL": "http://127.0.0.1:1/form",
    "ACTION_EXECUTE_URL": "http://127.0.0.1:1/execute",
    "GCS_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "PUBSUB_TOPIC": "projects/bench-project/topics/bench-exports",
}


def import_times(build: Path, runs: int) -> dict[str, dict[str, Any]]:
    """`python -X importtime` of each staged function's main, cold, and what it loads."""
    found: dict[str, dict[str, Any]] = {}
    for function in FUNCTIONS:
        folder = build / function
        cold, flask_alone, after_framework = [], [], []
        for _ in range(runs):
            cold.append(_cumulative(folder, "import main", "main"))
            flask_alone.append(_cumulative(folder, "import flask", "flask"))
            after_framework.append(_cumulative(folder, "import functions_framework, main", "main"))
        check = (
            "import main, sys; print('HEAVY:' + ','.join(m for m in ('google.cloud.storage', "
            "'google.cloud.pubsub_v1', 'google.cloud.secretmanager', 'grpc', 'Crypto') if m in sys.modules))"
        )
        out = _run_in(folder, check).stdout.splitlines()
        heavy = next(line for line in out if line.startswith("HEAVY:"))[6:].split(",")
        found[function] = {
            "cold_ms": statistics.median(cold) / 1000,
            "flask_ms": statistics.median(flask_alone) / 1000,
            "after_framework_ms": statistics.median(after_framework) / 1000,
            "heavy": [m for m in heavy if m],
        }
    return found


def _run_in(folder: Path, code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=folder,
        env={**os.environ, **FUNCTION_ENV, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=True,
    )


def _cumulative(folder: Path, code: str, module: str) -> int:
    """Microseconds `module` took, cumulative, as -X importtime reports it (fresh interpreter,
    no bytecode cache written: every run is as cold as a new instance's first)."""
    err = _run_in(folder, code, "-X", "importtime", "-B").stderr
    for line in err.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and match[3] == " " and match[4] == module:
            return int(match[2])
    raise RuntimeError(f"no import time for {module} in:\n{err[-2000:]}")


# --- the run -------------------------------------------------------------------------------------


@contextmanager
def workspace() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def conversion_rounds(
    size: Size, zip_path: Path, args: argparse.Namespace, work: Path
) -> dict[str, Runs]:
    kinds = [k for k in CONVERSION_KINDS if available(k)]
    if size.tiles and max(size.tiles) > ANCHOR_MAX_ROWS:
        kinds = [k for k in kinds if k not in ANCHOR_MODULES]
    if size.name == args.variants_on:
        kinds += [f"ours@{level}" for level in args.levels if level != args.level]
        kinds.append("ours-zlib")  # the fallback, and the size ISA-L's is held against
        if args.serial:
            kinds.append("ours-serial")
    if args.one_core and shutil.which("taskset"):
        kinds += [f"{kind}@{args.level}/{ONE_CORE}" for kind in ONE_CORE_KINDS if kind in kinds]
    found = {kind: Runs() for kind in kinds}
    for round_ in range(args.runs):
        for kind in kinds:
            measured, _, pinned = kind.partition("/")
            name, _, level = measured.partition("@")
            result = child(name, zip_path, int(level or args.level), work, pin=bool(pinned))
            found[kind].results.append(result)
            log(f"{size.name} round {round_ + 1} {kind}: {result['seconds']:.2f} s")
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "sizes": {},
        "started": datetime.now(UTC).isoformat(),
        "level": args.level,
    }
    report["load_before"] = os.getloadavg()
    with workspace() as work:
        zips = {}
        for name in args.sizes:
            size = SIZES[name]
            began = time.perf_counter()
            zips[name] = write_zip(size, work / f"{name}.zip")
            log(f"{name}: generated in {time.perf_counter() - began:.1f} s")
        for name in args.sizes:
            entry: dict[str, Any] = {"tiles": SIZES[name].tiles}
            report["sizes"][name] = entry
            entry["zip_bytes"] = zips[name].stat().st_size
            runs = conversion_rounds(SIZES[name], zips[name], args, work)
            entry["conversion"] = {k: v.results for k, v in runs.items()}
        if args.e2e:
            from bench.endtoend import Stack

            with Stack() as stack:
                for name in args.sizes:
                    results = []
                    for round_ in range(args.runs):
                        result = stack.export(zips[name], level=args.level, cap_bytes=CAP_BYTES)
                        results.append(result)
                        log(f"{name} round {round_ + 1} end to end: {result['seconds']:.2f} s")
                    report["sizes"][name]["e2e"] = results
        if args.imports:
            build = work / "build"
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "stage.sh"), str(build)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            report["imports"] = import_times(build, 1 if args.quick else max(args.runs, 5))
        if args.profile:
            report["profile"] = profile(zips[args.profile], args.level, work)
    report["load_after"] = os.getloadavg()
    report["finished"] = datetime.now(UTC).isoformat()
    report["machine"] = machine()
    return report


def profile(zip_path: Path, level: int, work: Path) -> list[tuple[str, float, float]]:
    """Where ours spends its time: cProfile's own time per function (deflate on its thread is
    not seen by cProfile; the serial variant is profiled so that it is)."""
    import pstats

    stats_path = work / "ours.prof"
    child("ours-serial", zip_path, level, work, "--profile", str(stats_path))
    stats = pstats.Stats(str(stats_path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, function), data in stats.stats.items():  # type: ignore[attr-defined]
        own = data[2]
        rows.append((f"{Path(file).name}:{line}({function})", own, own / total))
    rows.sort(key=lambda row: -row[1])
    return rows[:14]


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {}
    for package in ("functions-framework", "google-cloud-storage", "google-cloud-pubsub"):
        versions[package] = metadata.version(package)
    for package in ("stream-unzip", "isal", "pandas", "numpy", "xlsxwriter"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import zlib

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)),
        "os": platform.platform(),
        "python": platform.python_version(),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "versions": versions,
    }


# --- the report ----------------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / MIB:.0f}"


def _ratio(runs: dict[str, Runs], top: str, bottom: str) -> str:
    """Median of the per-round ratios (each round's runs ran back to back)."""
    if top not in runs or bottom not in runs:
        return "-"
    pairs = zip(runs[top].results, runs[bottom].results, strict=True)
    return f"{statistics.median(a['seconds'] / b['seconds'] for a, b in pairs):.3f}"


def render(report: dict[str, Any], command: str) -> str:
    lines: list[str] = []
    add = lines.append
    m = report["machine"]
    add(f"Run {report['started'][:16]}Z to {report['finished'][11:16]}Z: `{command}`")
    add("")
    add(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; "
        f"Python {m['python']}, zlib {m['zlib']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + "."
    )
    before, after = report["load_before"], report["load_after"]
    add(
        f"Load average (1/5/15 min) at start {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
        f"at end {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f} (a shared machine)."
    )
    add("")
    add("### Conversion: zip in, workbook bytes out to a null sink (median of runs)")
    add("")
    add(
        "| size | rows | measure | seconds | peak RSS MiB | peak tmp MiB | footprint MiB | output MiB |"
    )
    add("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, entry in report["sizes"].items():
        runs = {k: Runs(v) for k, v in entry["conversion"].items()}
        rows = sum(entry["tiles"])
        for kind, measured in runs.items():
            add(
                f"| {name} | {rows:,} | {kind} | {measured.median('seconds'):.2f} | "
                f"{_mib(measured.median('peak_rss'))} | {_mib(measured.median('peak_tmp'))} | "
                f"{_mib(measured.footprint)} | {measured.median('bytes') / MIB:.1f} |"
            )
    add("")
    add("Floor split (seconds): unzip + csv + typing every cell / deflating the workbook's XML.")
    add("")
    add("| size | parse + type | deflate | XML MiB |")
    add("| --- | ---: | ---: | ---: |")
    for name, entry in report["sizes"].items():
        floor = Runs(entry["conversion"]["floor"])
        add(
            f"| {name} | {floor.median('parse_seconds'):.2f} | "
            f"{floor.median('deflate_seconds'):.2f} | {floor.median('xml_bytes') / MIB:.0f} |"
        )
    add("")
    add(
        "### Ratios (per round, then the median; targets for medium: <= 0.05 x pandas on two "
        "cores, <= 0.08 on one, <= 1.5 x the floor on one)"
    )
    add("")
    add(
        "| size | ours / pandas, 2 cores | ours / pandas, 1 core | ours / floor, 2 cores | "
        "ours / floor, 1 core | ours / xlsxwriter constant_memory |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: |")
    level = report.get("level", 6)
    one = {k: f"{k}@{level}/{ONE_CORE}" for k in ONE_CORE_KINDS}
    for name, entry in report["sizes"].items():
        runs = {k: Runs(v) for k, v in entry["conversion"].items()}
        add(
            f"| {name} | {_ratio(runs, 'ours', 'pandas')} | "
            f"{_ratio(runs, one['ours'], one['pandas'])} | {_ratio(runs, 'ours', 'floor')} | "
            f"{_ratio(runs, one['ours'], one['floor'])} | {_ratio(runs, 'ours', 'xlsxwriter')} |"
        )
    if any("e2e" in entry for entry in report["sizes"].values()):
        add("")
        add(
            "### End to end: download URL -> action_execute -> fake-gcs-server (CSEK proxy) -> "
            "Pub/Sub emulator, the function under a 256 MiB address-space cap"
        )
        add("")
        add(
            "| size | seconds | idle RSS MiB | peak RSS MiB | peak tmp MiB | "
            "peak - idle MiB | peak address space MiB | object MiB | sheets |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        firsts: list[tuple[float, float]] = []
        for name, entry in report["sizes"].items():
            if "e2e" not in entry:
                continue
            e2e = Runs(entry["e2e"])
            grown = statistics.median(
                r["peak_rss"] + r["peak_tmp"] - r["idle_rss"] for r in e2e.results
            )
            sheets = entry["e2e"][-1]["sheets"]
            if "first_seconds" in entry["e2e"][-1]:
                firsts.append((e2e.median("first_seconds"), e2e.median("warm_seconds")))
            add(
                f"| {name} | {e2e.median('seconds'):.2f} | {_mib(e2e.median('idle_rss'))} | "
                f"{_mib(e2e.median('peak_rss'))} | {_mib(e2e.median('peak_tmp'))} | {_mib(grown)} "
                f"| {_mib(e2e.median('peak_vm'))} | {e2e.median('bytes') / MIB:.1f} | "
                f"{len(sheets)} ({sum(s[1] for s in sheets):,} rows) |"
            )
        if firsts:
            first, warm = (
                statistics.median(f for f, _ in firsts),
                statistics.median(w for _, w in firsts),
            )
            add("")
            add(
                f"The sample dashboard (3 tiles, pushed) through a freshly started function: first "
                f"request {first:.2f} s, the same again warm {warm:.2f} s ({first / warm:.1f} x; "
                "median over every start above)."
            )
    if "imports" in report:
        add("")
        add("### Import time of each function's `main` (staged bundle, fresh interpreter, median)")
        add("")
        add(
            "| function | `import main` cold ms | `import flask` alone ms | "
            "`main` after functions_framework ms | heavy clients loaded at import |"
        )
        add("| --- | ---: | ---: | ---: | --- |")
        for function, found in report["imports"].items():
            add(
                f"| {function} | {found['cold_ms']:.0f} | {found['flask_ms']:.0f} | "
                f"{found['after_framework_ms']:.0f} | {', '.join(found['heavy']) or 'none'} |"
            )
    if "profile" in report:
        add("")
        add("### Profile of the conversion (cProfile, serial variant, own time, top entries)")
        add("")
        add("| function | own s | share |")
        add("| --- | ---: | ---: |")
        for where, own, share in report["profile"]:
            add(f"| `{where}` | {own:.2f} | {share:.0%} |")
    return "\n".join(lines) + "\n"


def write_results(text: str, path: Path) -> None:
    """Replace the results between the markers, keeping the prose around them."""
    current = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = current.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{text}{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true",
        help="the smoke size, one round; writes no results (unless --write names a file)",
    )  # fmt: skip
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--level", type=int, default=6, help="zlib level of ours (as deployed)")
    parser.add_argument("--levels", default="1,9", help="other zlib levels to measure ours at")
    parser.add_argument("--serial", action="store_true", help="also ours with deflate inline")
    parser.add_argument(
        "--no-one-core",
        dest="one_core",
        action="store_false",
        help="skip ours, floor and pandas pinned to one CPU (taskset -c 0)",
    )
    parser.add_argument("--variants-on", default="medium", help="size for --levels, --serial")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false")
    parser.add_argument("--no-imports", dest="imports", action="store_false")
    parser.add_argument("--profile", metavar="SIZE", help="profile ours on this size")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--write", type=Path, help=f"results file (default {RESULTS.name})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.variants_on = "quick", 1, "quick"
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.levels = [int(level) for level in args.levels.split(",") if level]
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run(args)
    text = render(report, command.strip())
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    # A smoke run proves the paths work; its figures are not results, so BENCHMARKS.md is left.
    if args.write or not (args.no_write or args.quick):
        write_results(text, args.write or RESULTS)
    elif args.quick:
        print(f"(--quick: a smoke run; {RESULTS.name} is left as it is)")


if __name__ == "__main__":
    main()
