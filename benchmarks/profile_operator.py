"""Run the operator under cProfile (``EB_BENCH_PROFILE=out.prof python benchmarks/operator_lifecycle.py``).

python benchmarks/profile_operator.py NAMESPACE PLATFORM OUT.prof LIVENESS_PORT
"""

from __future__ import annotations

import cProfile
import sys

from operator_run import run_operator

if __name__ == "__main__":
    namespace, platform, out, port = sys.argv[1:5]
    prof = cProfile.Profile()
    prof.enable()
    try:
        run_operator(namespace, platform, port)
    finally:
        prof.disable()
        prof.dump_stats(out)
