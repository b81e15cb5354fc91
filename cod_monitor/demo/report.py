"""Reports on a demo ladder: accuracy tables by family, level and cluster, and curves.

:func:`ladder_report` is the text of a build's ``report.txt``, :func:`plot_curves`
its ``curves.png`` (when matplotlib is installed), :func:`final_accuracy` the
per-run accuracy of its ``build.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cod_monitor.demo.tasks import FAMILIES, parse_sample_id
from cod_monitor.ladder import Ladder, ModelInfo

__all__ = ["final_accuracy", "ladder_report", "plot_curves"]



def _final_models(ladder: Ladder) -> list[ModelInfo]:
    """The last checkpoint of every run, by compute."""
    last: dict[str, ModelInfo] = {}
    for m in ladder.models:
        if m.run_key not in last or (m.step or 0) > (last[m.run_key].step or 0):
            last[m.run_key] = m
    return sorted(last.values(), key=lambda m: m.compute)


def _all_rates(ladder: Ladder, benchmark: str = "demo"):
    """(sample_ids, models, pass_rates) over every model, targets included."""
    roles = sorted({m.role for m in ladder.models})
    mat = ladder.matrix(benchmark, roles=roles)
    return mat.sample_ids, mat.models, mat.pass_rates


def final_accuracy(ladder: Ladder) -> dict:
    """Run -> mean pass rate of its last checkpoint on ``demo``."""
    ids, models, X = _all_rates(ladder)
    names = [m.name for m in models]
    return {m.run_key: float(X[:, names.index(m.name)].mean()) for m in _final_models(ladder)}


def ladder_report(ladder: Ladder, benchmark: str = "demo", *, n_clusters: int = 8) -> str:
    """Text report: final-checkpoint accuracy per run by family, level and cluster.

    Also checks that accuracy rises with compute (inversions between consecutive
    runs) and how spread the samples' emergence points are (the first run whose
    pass rate exceeds 0.5).
    """
    ids, models, X = _all_rates(ladder, benchmark)
    finals = _final_models(ladder)
    cols = [[m.name for m in models].index(f.name) for f in finals]
    F = X[:, cols]
    head = "".join(f"{f.run_key[:13]:>14}" for f in finals)
    lines = [f"final-checkpoint mean pass rate on {benchmark!r} ({len(ids)} samples)", ""]
    lines.append(f"{'':16}{head}")
    lines.append(f"{'compute (FLOPs)':16}" + "".join(f"{f.compute:>14.3g}" for f in finals))
    lines.append(f"{'role':16}" + "".join(f"{f.role:>14}" for f in finals))
    lines.append(f"{'ALL':16}" + "".join(f"{v:>14.3f}" for v in F.mean(axis=0)))
    fam = np.array([parse_sample_id(s)[0] for s in ids])
    lev = np.array([parse_sample_id(s)[1] for s in ids])
    for family in dict.fromkeys(fam.tolist()):
        m = fam == family
        lines.append(f"{family:16}" + "".join(f"{v:>14.3f}" for v in F[m].mean(axis=0)))
        for level in FAMILIES.get(family, sorted(set(lev[m].tolist()))):
            ml = m & (lev == level)
            if ml.any():
                lines.append(f"  {f'{family}-{level}':<14}" + "".join(
                    f"{v:>14.3f}" for v in F[ml].mean(axis=0)))
    acc = F.mean(axis=0)
    inversions = [(finals[i].run_key, finals[i + 1].run_key)
                  for i in range(len(finals) - 1) if acc[i + 1] < acc[i]]
    lines += ["", f"accuracy rises with compute: {not inversions}"
              + (f" (inversions: {inversions})" if inversions else "")]
    ladder_cols = [j for j, f in enumerate(finals) if f.role == "ladder"]
    L = F[:, ladder_cols]
    emerged = (L > 0.5)
    first = np.where(emerged.any(axis=1), emerged.argmax(axis=1), len(ladder_cols))
    counts = np.bincount(first, minlength=len(ladder_cols) + 1)
    lines.append("emergence (first ladder run with pass rate > 0.5): " + ", ".join(
        f"{(finals[ladder_cols[k]].run_key if k < len(ladder_cols) else 'never')}: {c}"
        for k, c in enumerate(counts)))
    zero = int((L.max(axis=1) == 0).sum())
    lines.append(f"all-zero difficulty vectors on the ladder: {zero} of {len(ids)}")
    lines += ["", *_cluster_lines(L, F, finals, n_clusters)]
    return "\n".join(lines) + "\n"


def _cluster_lines(L, F, finals, n_clusters) -> list[str]:
    """Mean curves of difficulty clusters (KMeans on the ladder's final vectors)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:  # pragma: no cover
        return []
    k = min(n_clusters, len(np.unique(L, axis=0)))
    if k < 2:
        return []
    labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(L)
    order = np.argsort([-F[labels == c].mean() for c in range(k)])
    out = [f"difficulty clusters (KMeans k={k} on ladder final-checkpoint pass rates; "
           "descriptive only, not COD's clustering)"]
    for c in order:
        m = labels == c
        out.append(f"cluster n={int(m.sum()):<9}" + "".join(
            f"{v:>14.3f}" for v in F[m].mean(axis=0)))
    return out


def plot_curves(ladder: Ladder, path: Path) -> bool:
    """Per-family and per-level curves vs compute; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ids, models, X = _all_rates(ladder)
    finals = _final_models(ladder)
    cols = [[m.name for m in models].index(f.name) for f in finals]
    F = X[:, cols]
    C = np.array([f.compute for f in finals])
    is_t = np.array([f.role == "target" for f in finals])
    fam = np.array([parse_sample_id(s)[0] for s in ids])
    lev = np.array([parse_sample_id(s)[1] for s in ids])
    families = list(dict.fromkeys(fam.tolist()))
    fig, axes = plt.subplots(2, (len(families) + 2) // 2, figsize=(14, 7), squeeze=False)
    ax = axes.flat[0]
    ax.plot(C[~is_t], F[:, ~is_t].mean(0), "o-", label="ladder")
    ax.plot(C[is_t], F[:, is_t].mean(0), "r*", ms=12, label="target")
    for family in families:
        ax.plot(C, F[fam == family].mean(0), ".--", alpha=0.6, label=family)
    ax.set(xscale="log", title="all samples", xlabel="compute (FLOPs)", ylabel="mean pass rate")
    ax.legend(fontsize=7)
    for ax, family in zip(list(axes.flat)[1:], families):
        for level in sorted(set(lev[fam == family].tolist())):
            m = (fam == family) & (lev == level)
            ax.plot(C, F[m].mean(0), "o-", ms=3, label=f"{family}-{level}")
        ax.axvline(C[is_t].min() if is_t.any() else C.max(), color="r", lw=0.5)
        ax.set(xscale="log", title=family, ylim=(-0.02, 1.02))
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(families) + 1:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
