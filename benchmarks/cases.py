"""Forecasting cases for the accuracy benchmark, built from public ladder results.

The data stay in ``../shared/cod_data`` (never copied into the repository); every
loader returns ``[]`` when that folder is absent, so the benchmark skips cleanly.

A case is one forecast: a ladder whose fit models all have less compute than the
target, the benchmark, and the held-out target (role ``target``) whose measured
accuracy is the truth.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import gammaln

from cod_monitor.exceptions import FitWarning, LadderValidationError
from cod_monitor.ladder import Ladder, ModelInfo
from cod_monitor.ladder.selection import final_checkpoints, select_fit_points

DATA_DIR = Path(os.environ.get("COD_DATA", Path(__file__).resolve().parents[2] / "shared" / "cod_data"))
PYTHIA_TARGET = "pythia-12b@step143000"


@dataclass(frozen=True)
class Case:
    """One forecast to score.

    Attributes
    ----------
    name : str
        Row label in the table.
    group : str
        Which family of cases (``pythia-llmonkeys``, ``openlm``, ``synthetic`` ...).
    ladder : Ladder
        Ladder models (compute below the target) plus the target, role ``target``.
    benchmark : str
    target : str
        Target model name.
    truth : float
        Measured (or, for synthetic ladders, exact expected) target accuracy.
    options : dict
        Extra keyword arguments every method gets for this case (e.g. checkpoints).
    """

    name: str
    group: str
    ladder: Ladder
    benchmark: str
    target: str
    truth: float
    options: dict

    @property
    def target_compute(self) -> float:
        return self.ladder.model(self.target).compute


def pass_at_k(n, c, k):
    """Unbiased per-problem pass@k, 1 - C(n-c, k)/C(n, k), from n samples with c correct."""
    n, c = np.asarray(n, dtype=float), np.asarray(c, dtype=float)
    out = np.ones_like(n)
    ok = n - c >= k
    log_ratio = (
        gammaln(n[ok] - c[ok] + 1) - gammaln(n[ok] - c[ok] - k + 1)
        - gammaln(n[ok] + 1) + gammaln(n[ok] - k + 1)
    )
    out[ok] = 1.0 - np.exp(log_ratio)
    return out


def _pythia_models(names) -> list[ModelInfo]:
    out = []
    with open(DATA_DIR / "pythia_monkeys" / "models.csv") as f:
        for r in csv.DictReader(f):
            if r["model"] in names:
                out.append(
                    ModelInfo(
                        r["model"], float(r["params_total"]), float(r["tokens"]),
                        float(r["compute_6ND"]), step=int(r["step"]),
                        run=r["model"].split("@")[0],
                    )
                )
    return out


def _pythia_ladder(file: str, benchmark: str, k: int, keep) -> Ladder:
    """Ladder of pass@k (k=1: the raw pass rate) for the models ``keep`` accepts."""
    rows = defaultdict(lambda: [0, 0])
    with open(DATA_DIR / "pythia_monkeys" / file) as f:
        for r in csv.DictReader(f):
            if keep(r["model"]):
                # a few (problem, model) cells appear twice in the sweeps: pool them
                cell = rows[(r["problem_id"], r["model"])]
                cell[0] += int(r["n_samples"])
                cell[1] += int(r["n_correct"])
    keys = list(rows)
    n = np.array([rows[key][0] for key in keys])
    c = np.array([rows[key][1] for key in keys])
    score = c / n if k == 1 else pass_at_k(n, c, k)
    records = [
        {"benchmark": benchmark, "sample_id": p, "model": m, "score": float(s)}
        for (p, m), s in zip(keys, score)
    ]
    models = _pythia_models({m for _, m in keys})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # a few problems lack some checkpoints
        return Ladder.from_records(models, records, drop_incomplete=True, source=file)


def _truth(ladder: Ladder, benchmark: str, target: str) -> float:
    m = ladder.matrix(benchmark, roles=("target",))
    return float(m.pass_rates[:, m.model_names.index(target)].mean())


def _case(name, group, ladder, benchmark, target, **options) -> Case:
    """Hold out ``target`` and drop every model with at least its compute."""
    t = ladder.model(target)
    too_big = [m.name for m in ladder.models if m.compute >= t.compute and m.name != target]
    ladder = ladder.without_models(too_big).with_roles({target: "target"})
    return Case(name, group, ladder, benchmark, target, _truth(ladder, benchmark, target), options)


def _fittable(case: Case) -> bool:
    """Whether the case leaves enough ladder points for every method to fit."""
    try:
        select_fit_points(
            case.ladder, case.benchmark,
            checkpoints=case.options.get("checkpoints", "final"),
            smooth_checkpoints=case.options.get("smooth_checkpoints", False),
        )
    except LadderValidationError:
        return False
    return True


def _leave_largest_out(case: Case, n: int = 2) -> list[Case]:
    """Predict each of the ``n`` largest ladder runs from the runs below it.

    Runs that would leave fewer than 3 ladder points below them are skipped.
    """
    ladder = case.ladder.without_models([case.target])
    fit = [m for m in ladder.models if m.role == "ladder"]
    finals = [fit[i] for i in final_checkpoints(tuple(fit))]
    largest = sorted(finals, key=lambda m: m.compute)[-n:]
    out = []
    for m in largest:
        same_run = [
            x.name for x in fit
            if x.step is not None and x.run_key == m.run_key and x.name != m.name
        ]
        sub = ladder.without_models(same_run)
        loo = _case(f"{case.name} / LOO {m.name}", case.group + "-loo", sub, case.benchmark,
                    m.name, **case.options)
        if _fittable(loo):
            out.append(loo)
    return out


def pythia_cases() -> list[Case]:
    """Large Language Monkeys MATH (pass@1, 10, 100) and the MATH/GSM8K sweeps."""
    if not (DATA_DIR / "pythia_monkeys").is_dir():
        return []
    cases = []
    for k in (1, 10, 100):
        ladder = _pythia_ladder("math_llmonkeys.csv", "math", k, lambda m: True)
        cases.append(_case(f"pythia MATH pass@{k}", "pythia-llmonkeys", ladder, "math", PYTHIA_TARGET))
    for file, bench in (("math_sweep.csv", "math"), ("gsm8k_sweep.csv", "gsm8k")):
        # the 12B run's own checkpoints are not ladder points: only smaller runs are
        ladder = _pythia_ladder(
            file, bench, 1,
            lambda m: m == PYTHIA_TARGET or not m.startswith("pythia-12b@")
            and not m.endswith("@step1"),
        )
        cases.append(
            _case(f"pythia {bench} sweep", "pythia-sweep", ladder, bench, PYTHIA_TARGET,
                  checkpoints="all", smooth_checkpoints=True)
        )
    return cases


def openlm_cases() -> list[Case]:
    """OpenLM (Gadre et al. 2024) per corpus: predict the 7B (1x) from smaller compute."""
    root = DATA_DIR / "openlm_scaling_gadre"
    if not root.is_dir():
        return []
    models = {}
    with open(root / "models.csv") as f:
        for r in csv.DictReader(f):
            models[r["model"]] = (r["dataset"], ModelInfo(
                r["model"], float(r["params_total"]), float(r["tokens"]),
                float(r["compute_6ND"]),
            ))
    scores = defaultdict(list)
    with open(root / "tasks.csv") as f:
        for r in csv.DictReader(f):
            corpus = models[r["model"]][0]
            scores[corpus].append(
                {"benchmark": "openlm46", "sample_id": r["task"], "model": r["model"],
                 "score": float(r["score"])}
            )
    cases = []
    for corpus in sorted(scores):
        ms = [info for ds, info in models.values() if ds == corpus]
        ladder = Ladder.from_records(ms, scores[corpus], source=f"openlm {corpus}")
        target = f"{corpus}-open_lm_7b-1.0"
        cases.append(_case(f"openlm {corpus} 7B", "openlm", ladder, "openlm46", target))
    return cases


#: Built CPU ladders stored as benchmark data (``benchmarks/build_cpu_ladders.py``).
CPU_LADDERS_DIR = Path(__file__).resolve().parent / "data"


def built_ladder_cases(ladder_dir, label: str, headline_group: str) -> list[Case]:
    """One case per benchmark of a ladder built by ``build_demo_ladder``.

    The target is the model with role ``target`` at its final step (the mean over the
    target's seeds when the build trained several); the ladder runs are fitted as they
    are. Benchmarks of the knowledge families (and ``knowledge`` itself) go to group
    ``knowledge``, the others to ``headline_group``; a family that is its aggregate's
    only one is scored once, under the aggregate's name. Returns ``[]`` when the
    directory holds no ladder.
    """
    from cod_monitor.demo.tasks import BENCHMARK_FAMILIES, KNOWLEDGE_FAMILIES

    ladder_dir = Path(ladder_dir)
    if not (ladder_dir / "ladder.json").is_file():
        return []
    ladder = Ladder.load(ladder_dir)
    targets = ladder.models_with_role("target")
    if not targets:
        return []
    target = max(targets, key=lambda m: (m.step or 0, m.compute))
    knowledge = {"knowledge", *KNOWLEDGE_FAMILIES}
    cases, seen = [], set()
    # the aggregates first; a benchmark with the very samples of another (the
    # `knowledge` of a ladder with one knowledge family) is one case, not two
    for bench in sorted(ladder.benchmarks, key=lambda b: (b not in BENCHMARK_FAMILIES, b)):
        ids = frozenset(ladder.matrix(bench).sample_ids)
        if ids in seen:
            continue
        seen.add(ids)
        try:
            truth = _truth(ladder, bench, target.name)
        except (LadderValidationError, ValueError):
            continue  # the target has no scores on this benchmark
        group = "knowledge" if bench in knowledge else headline_group
        case = Case(f"{label} {bench}", group, ladder, bench, target.name, truth, {})
        if _fittable(case):
            cases.append(case)
    return cases


def demo_cases() -> list[Case]:
    """The shipped demo ladder: its headline benchmarks (group ``demo``) and its
    knowledge benchmarks (group ``knowledge``); ``[]`` when it is absent."""
    from cod_monitor.demo import SHIPPED_LADDER

    return built_ladder_cases(SHIPPED_LADDER, "demo", "demo")


def cpu_ladder_cases() -> list[Case]:
    """The CPU ladders of ``benchmarks/data`` (other task mixes, seeds and sizes than
    the demo's, built by the same code): group ``cpu``, knowledge benchmarks in
    ``knowledge``. A ladder build has a ``build.json``; the live runs of
    ``benchmarks/data/live_runs`` (the demo ladder's target recipe, ``bench_live``) are
    not a ladder of their own."""
    if not CPU_LADDERS_DIR.is_dir():
        return []
    return [case for d in sorted(CPU_LADDERS_DIR.iterdir()) if (d / "build.json").is_file()
            for case in built_ladder_cases(d, d.name, "cpu")]


def read_build(ladder_dir) -> dict:
    """The ``build.json`` of a demo ladder: in the ladder directory, or beside it (the
    ``ladder/`` of a ``build-demo`` output); ``{}`` when there is none."""
    ladder_dir = Path(ladder_dir)
    for cand in (ladder_dir / "build.json", ladder_dir.parent / "build.json"):
        if cand.is_file():
            return json.loads(cand.read_text())
    return {}


def target_and_seed_runs(ladder: Ladder) -> list[str]:
    """Run keys of a ladder's target run, then of its seed variants ``<run>-seed<k>``
    (e.g. from ``bench_demo_ladder.py --target-seeds``), in order of ``k``."""
    keys = list(dict.fromkeys(m.run_key for m in ladder.models if m.role == "target"))
    primary = [k for k in keys if not re.search(r"-seed\d+$", k)][-1]
    variants = [k for k in keys if re.fullmatch(re.escape(primary) + r"-seed\d+", k)]
    return [primary, *sorted(variants, key=lambda k: int(k.rsplit("seed", 1)[1]))]


def real_cases(leave_largest_out: bool = True, n_loo: int = 2) -> list[Case]:
    """Every real case, plus the leave-one-largest-out cases inside each.

    Parameters
    ----------
    leave_largest_out : bool, default True
        Add, for every base case, forecasts of its ``n_loo`` largest ladder runs from
        the runs below them (group ``<group>-loo``).
    n_loo : int, default 2
        Largest runs held out per base case (those leaving fewer than 3 ladder points
        are skipped).
    """
    base = pythia_cases() + openlm_cases()
    if not leave_largest_out:
        return base
    return base + [loo for c in base for loo in _leave_largest_out(c, n_loo)]
