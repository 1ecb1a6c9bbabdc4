"""Every benchmark in one go, one after the other, each on emulators of its own.

    python benchmarks/run_all.py [--repeat 2] [--only s3,azure,gcs,containerd,pull,copy]

Runs bench_s3 (256 MiB and 1 GiB), bench_azure (256 MiB), bench_gcs (256 MiB) and
bench_containerd (builtin, file:// and S3), each at 0 and 20 ms per request, bench_pull
(pulls with unpacking from a local registry, and the floor under any proxy plugin) and
bench_copy (an image, file:// to S3) with their defaults, ``--repeat`` times each; every run
starts its own moto server / Azurite / fake-gcs-server / containerd / registry on 127.0.0.1 and
stops it by PID before the next one starts. Prints each run's table, the spread over the runs,
and at the end every benchmark's spread table again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_azure
import bench_containerd
import bench_copy
import bench_gcs
import bench_pull
import bench_s3
from _common import repeat, spread_table

BENCHES = {  # name: (module, its own arguments)
    "s3": (bench_s3, ["--sizes", "256,1024"]),
    "azure": (bench_azure, []),
    "gcs": (bench_gcs, []),
    "containerd": (bench_containerd, ["--s3", "--unpack", "--delays", "0,20"]),
    "pull": (bench_pull, ["--floor"]),
    "copy": (bench_copy, []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each benchmark")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated names")
    args = parser.parse_args()
    summary: list[str] = []
    for name in args.only.split(","):
        module, argv = BENCHES[name]
        bench_args = module.parser().parse_args(argv)
        bench_args.repeat = args.repeat
        print(f"\n## {name}: {module.__file__} {' '.join(argv)}", flush=True)
        started = time.perf_counter()
        runs = repeat(bench_args, module.measure, module.BASE)
        took = time.perf_counter() - started
        summary.append(
            f"## {name} ({len(runs)} runs, {took:.0f} s)\n\n{spread_table(runs, module.BASE)}"
        )
    print("\n\n" + "\n\n".join(summary))


if __name__ == "__main__":
    main()
