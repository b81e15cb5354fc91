"""The embedded demo: a synthetic benchmark, a char tokenizer and a ladder of tiny
Llama models trained from scratch by one recipe, plus the prebuilt ladder shipped in
``cod_monitor/data/demo_ladder``.

- :mod:`cod_monitor.demo.tasks`: seeded exact-answer tasks of graded difficulty and
  a training stream that never contains an evaluation prompt (no torch);
- :mod:`cod_monitor.demo.tokenizer`: the char-level tokenizer (``tokenizers``);
- :mod:`cod_monitor.demo.recipe`: model sizes, token and learning-rate schedules (no torch);
- :mod:`cod_monitor.demo.train`: data set, model, training (HF ``Trainer`` or a
  plain loop), exact pass rates with ``HFEvaluator``
  (:func:`~cod_monitor.demo.train.evaluate_model`),
  :func:`~cod_monitor.demo.train.train_target`;
- :mod:`cod_monitor.demo.sabotage`: faults to inject into a training run (an LR spike,
  corrupted answers, a gradual slowdown, a too-high LR), for testing a monitor (no torch);
- :mod:`cod_monitor.demo.build`: :func:`~cod_monitor.demo.build.build_demo_ladder`,
  with its text report and curves from :mod:`cod_monitor.demo.report`;
- :mod:`cod_monitor.demo.live`: the live demo (``cod-monitor demo``), with its settings
  and evaluation sets in :mod:`cod_monitor.demo.live_config` and its console lines and
  summary in :mod:`cod_monitor.demo.live_summary`.

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED_LADDER", "load_demo_ladder"]

#: Directory of the prebuilt demo ladder shipped with the package.
SHIPPED_LADDER = Path(__file__).resolve().parent.parent / "data" / "demo_ladder"


def load_demo_ladder():
    """The shipped prebuilt demo ladder (pass rates and metadata, no weights).

    Returns
    -------
    cod_monitor.ladder.Ladder
        Six ladder runs (8 checkpoints each) and a target run (16 checkpoints,
        role ``'target'``); benchmarks ``demo`` (all samples) and one per task
        family. ``BUILD.md`` beside it gives the command that rebuilt it.

    Examples
    --------
    >>> ladder = load_demo_ladder()  # doctest: +SKIP
    >>> "demo" in ladder.benchmarks  # doctest: +SKIP
    True
    """
    from cod_monitor.ladder import Ladder

    return Ladder.load(SHIPPED_LADDER)
