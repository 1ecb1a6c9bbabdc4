"""``~=`` filter matching time against label length, for patterns that make a backtracker explode.

    python benchmarks/bench_filters.py [--max-bytes 4096] [--rounds 200]

For each pattern and label length (doubling up to ``--max-bytes``, the largest label) the label is
``aaa...a!`` (a near miss: the worst case for a backtracking matcher) and the table shows the
median time of one ``Filter.match`` over ``--rounds`` rounds, and that time per KiB of label. A
linear matcher keeps the per-KiB column flat. For contrast, Python's backtracking ``re`` runs the
first pattern on short labels only (each extra character doubles its time). A last table shows
patterns with large compiled programs (big counted repetitions of Unicode classes) on
mixed-script labels: still linear, with a constant that grows with the program.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cargohold.filters import info_adaptor, parse_filters, quote
from cargohold.types import Info

PATTERNS = ["^(a+)+$", "^(a|aa)+$", "^(a*)*b$", "(x+x+)+y|^(a|a?)+$"]
LARGE = ["\\pL{200}", "(?s).{1000}\\pL", "(\\p{Greek}|\\p{Han}|\\pN){300}$"]
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-bytes", type=int, default=4096, help="longest label value")
    parser.add_argument("--rounds", type=int, default=200, help="matches timed per cell")
    parser.add_argument("--re-max", type=int, default=22, help="longest label for Python's re")
    return parser


def time_match(pattern: str, length: int, rounds: int, label: str = "") -> float:
    """Median seconds of one match of ``labels.x~=<pattern>`` on ``label`` (default: a near
    miss, ``aaa...a!``, which must not match)."""
    matcher = parse_filters("labels.x~=" + quote(pattern, "/"))
    near_miss = not label
    label = label or "a" * (length - 1) + "!"
    info = Info("sha256:" + "0" * 64, 1, NOW, NOW, {"x": label})
    adaptor = info_adaptor(info)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        matched = matcher.match(adaptor)
        samples.append(time.perf_counter() - started)
        assert not (near_miss and matched)
    return statistics.median(samples)


def main() -> None:
    """Print the tables."""
    args = parser().parse_args()
    lengths = []
    length = 16
    while length <= args.max_bytes:
        lengths.append(length)
        length *= 2
    print("## cargohold (RE2): median µs per match (µs per KiB of label)\n")
    print("| label bytes | " + " | ".join(f"`{p}`" for p in PATTERNS) + " |")
    print("|---:|" + "---:|" * len(PATTERNS))
    for length in lengths:
        cells = []
        for pattern in PATTERNS:
            seconds = time_match(pattern, length, args.rounds)
            cells.append(f"{seconds * 1e6:.1f} ({seconds * 1e6 * 1024 / length:.1f})")
        print(f"| {length} | " + " | ".join(cells) + " |")
    print("\n## cargohold (RE2), large programs on mixed-script labels: median ms per match\n")
    print("| label chars | " + " | ".join(f"`{p}`" for p in LARGE) + " |")
    print("|---:|" + "---:|" * len(LARGE))
    mixed = random.Random(1)
    for length in [n for n in lengths if n >= 512]:
        label = "".join(mixed.choice("a\u0431\u03bb\u6f22" + "1\u00e9") for _ in range(length))
        rounds = max(3, args.rounds // 20)
        cells = [f"{time_match(p, length, rounds, label) * 1e3:.2f}" for p in LARGE]
        print(f"| {length} | " + " | ".join(cells) + " |")
    print(f"\n## Python's re (backtracking), `{PATTERNS[0]}`: ms per match\n")
    print("| label bytes | ms |")
    print("|---:|---:|")
    backtracker = re.compile(PATTERNS[0])
    for length in range(args.re_max - 6, args.re_max + 1, 2):
        label = "a" * (length - 1) + "!"
        started = time.perf_counter()
        assert backtracker.search(label) is None
        print(f"| {length} | {(time.perf_counter() - started) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
