#!/usr/bin/env python3
"""Picks l4lb's --copy_bytes from numbers: CPU per request of l4lb relaying
keep-alive HTTP responses of several sizes, for several copy thresholds (0 =
always splice). Same pinning and backends as compare.py. Run it through
bench/compare.sh --copy_threshold (builds l4lb -c opt first)."""

import argparse
import shutil
import sys
import tempfile

import compare


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--l4lb", required=True)
    ap.add_argument("--thresholds", default="0,4096,16384,65536")
    ap.add_argument("--sizes", default="1k,4k,16k,64k,256k")
    ap.add_argument("--balancer_cpus", default="0")
    ap.add_argument("--client_cpus", default="1")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--wrk_connections", type=int, default=8)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="l4lb-copy-")
    backends, _, http_port = compare.start_backends(work, args.client_cpus)
    sizes = args.sizes.split(",")
    table = {}
    try:
        for threshold in args.thresholds.split(","):
            for size in sizes:
                print(f"[copy_bytes={threshold}] {size}", file=sys.stderr)
                b = compare.L4lb(args.l4lb, f"--copy_bytes={threshold}", "l4lb", work,
                                 args.balancer_cpus, 1)
                r = compare.measure_wrk(b, http_port, args, close=False, path=size,
                                        cpu_per_request=True)
                table[threshold, size] = r
    finally:
        for p in backends:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)

    print("\nl4lb CPU µs per keep-alive request (requests/s), by response size and "
          "--copy_bytes; 1 thread, wrk -c%d\n" % args.wrk_connections)
    print("| --copy_bytes | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for threshold in args.thresholds.split(","):
        cells = [f"{table[threshold, s]['cpu_us_per_req']:.1f} ({table[threshold, s]['rps']:.0f})"
                 for s in sizes]
        print(f"| {threshold} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
