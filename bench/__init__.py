"""The benchmark: `python -m bench` (or `./dev bench`); see bench/README.md and BENCHMARKS.md."""
