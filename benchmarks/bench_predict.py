"""How long ``cod-monitor predict`` takes, per number of methods, as a user runs it.

Each case runs the command in a fresh process (``cod_monitor.cli.main``, imports
included) and records its wall time and CPU time (user + system of the child, from
``resource.getrusage``), split into the imports (numpy, SciPy and the package, what any
``predict`` loads; scikit-learn loads later, for ``--method all``'s clustering ablations)
and the rest (reading the ladder, forecasting, printing). Cases:

- the shipped demo ladder, benchmark ``demo``, target ``--target`` = its last target
  checkpoint: the default method alone, the default with its interval turned off
  (``--n-bootstrap 0``), and ``--method all``;
- a synthetic ladder of ``--n-samples`` samples (17,944 by default, MMLU-pro-sized), the
  default method alone;
- ``cod-monitor --version`` (the parser and imports only).

Writes ``benchmarks/results/bench_predict.json`` and prints the table. Usage::

    python -m benchmarks.bench_predict [--n-samples 17944] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


#: The child: imports what ``predict`` imports (numpy, SciPy, the package),
#: notes its own CPU time, then runs the command and notes it again (on stderr).
_CHILD = (
    "import json, resource, sys, time\n"
    "def cpu():\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    return r.ru_utime + r.ru_stime\n"
    "from cod_monitor.cli import configure_process, main\n"
    "configure_process(sys.argv[1:])  # as the cod-monitor command does, before numpy\n"
    "if sys.argv[1] != '--version':\n"
    "    import cod_monitor.methods, cod_monitor.cod.routing  # what predict loads\n"
    "imported = cpu()\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    print('COD-TIMING ' + json.dumps({'imports_cpu_s': imported, 'cpu_s': cpu()}),\n"
    "          file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def timed(argv: list[str]) -> dict:
    """Run ``cod-monitor ARGV`` in a fresh process: wall and CPU seconds (all of them,
    and those spent after the imports: reading the ladder and forecasting), exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    timing = [json.loads(line.split(" ", 1)[1]) for line in proc.stderr.splitlines()
              if line.startswith("COD-TIMING ")]
    imports = timing[-1]["imports_cpu_s"] if timing else float("nan")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "imports_cpu_s": round(imports, 2), "after_imports_cpu_s": round(cpu - imports, 2),
            "exit": proc.returncode,
            "stderr_tail": [ln for ln in proc.stderr.strip().splitlines()
                            if not ln.startswith("COD-TIMING ")][-1:] if proc.returncode > 1
            else []}


def cases(n_samples: int, workdir: Path) -> list[tuple[str, int, list[str]]]:
    """``(name, n_methods, argv)`` of every case; writes the synthetic ladder."""
    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.ladder import load_ladder
    from cod_monitor.methods import available_methods
    from cod_monitor.synthetic import synthetic_ladder

    demo = load_ladder(str(SHIPPED_LADDER))
    target = [m.name for m in demo.models_with_role("target")][-1]
    base = ["predict", "--ladder", str(SHIPPED_LADDER), "--benchmark", "demo", "--target", target]
    syn = synthetic_ladder(n_samples=n_samples, seed=0)
    syn_dir = workdir / "synthetic"
    syn.ladder.save(syn_dir)
    n_all = len(available_methods())
    return [
        ("--version", 0, ["--version"]),
        ("demo ladder, cod", 1, base),
        ("demo ladder, cod --n-bootstrap 0", 1, base + ["--n-bootstrap", "0"]),
        (f"synthetic {n_samples} samples, cod", 1,
         ["predict", "--ladder", str(syn_dir), "--benchmark", syn.benchmark,
          "--target-compute", repr(syn.target.compute)]),
        ("demo ladder, --method all", n_all, base + ["--method", "all"]),
    ]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-samples", type=int, default=17944)
    p.add_argument("--repeats", type=int, default=1, help="runs per case (the median is kept)")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_predict.json")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, n_methods, case_argv in cases(args.n_samples, Path(tmp)):
            runs = sorted((timed(case_argv) for _ in range(args.repeats)),
                          key=lambda r: r["cpu_s"])
            row = {"case": name, "methods": n_methods, **runs[len(runs) // 2]}
            rows.append(row)
            print(f"{name:42s} methods {n_methods:3d}  wall {row['wall_s']:7.1f} s  "
                  f"cpu {row['cpu_s']:7.1f} s (imports {row['imports_cpu_s']:5.1f}, then "
                  f"{row['after_imports_cpu_s']:5.1f})  exit {row['exit']}", flush=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
           "command": "python -m benchmarks.bench_predict " + " ".join(argv or sys.argv[1:]),
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
