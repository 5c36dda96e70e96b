"""Runs one benchmark body of `benches/compare.rs` outside criterion, for
`scripts/growth` and `scripts/ab`."""
import os
import subprocess


def ns_per_run(binary, case):
    """Nanoseconds per run of the body `case` ("group/system/N") of the
    compare bench `binary`, in its steady state: one warm-up run, then
    enough runs for about 1-2 s (`NURSERY_PROFILE_RUNS`)."""
    n = int(case.rsplit("/", 1)[1])
    env = dict(os.environ, NURSERY_PROFILE=case, NURSERY_BENCH_SIZES=str(n),
               NURSERY_PROFILE_RUNS=str(max(3, 5_000_000 // n)))
    out = subprocess.run([binary, "--bench"], env=env, capture_output=True,
                         text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith(case + ":"))
    return int(line.split(": ")[1].split()[0])
