"""Everything README's quick starts need besides the monitor: a model, data and a ladder.

The quick starts show ``CODCallback`` in a ``Trainer`` and ``CODMonitor`` in a plain
loop; what a user brings (a model, its training data, a ladder of smaller runs of the
same recipe and the evaluation sets the ladder was scored on) comes from
:func:`demo_run` here: a small Llama of the demo recipe, its task data, and the
shipped demo ladder with its ``demo`` evaluation set. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoRun", "demo_run"]


@dataclass(frozen=True)
class DemoRun:
    """What a quick start trains and monitors (see :func:`demo_run`).

    Attributes
    ----------
    model : transformers.LlamaForCausalLM
        Freshly initialised.
    tokenizer : transformers.PreTrainedTokenizerFast
        Saved with every checkpoint (pass it to the ``Trainer`` as
        ``processing_class``), so that the evaluator can load a checkpoint alone.
    train_dataset : torch.utils.data.Dataset
        Blocks of ``block_size`` tokens (``input_ids`` and ``labels``).
    ladder : str
        The ladder directory (the shipped demo ladder).
    eval_sets : dict
        Benchmark -> evaluation-set spec (``{"path", "stop", "name"}``) of the ladder's
        samples.
    config_dir : str
        The model's config and tokenizer files (what a plain loop's state-dict
        snapshots need).
    learning_rate : float
        The recipe's peak learning rate for this model size.
    batch_size, block_size : int
        The recipe's sequences per step and tokens per sequence.
    """

    model: object
    tokenizer: object
    train_dataset: object
    ladder: str
    eval_sets: dict
    config_dir: str
    learning_rate: float
    batch_size: int
    block_size: int


def demo_run(out_dir, *, hidden: int = 32, layers: int = 1, steps: int = 40) -> DemoRun:
    """A small model of the demo recipe, its data, and the shipped ladder's ``demo`` set.

    Parameters
    ----------
    out_dir : path
        Where the evaluation set and the model's config are written.
    hidden, layers : int, default 32, 1
        The Llama's shape (32 x 1: 14k parameters, seconds per hundred steps on a CPU).
    steps : int, default 40
        Training steps the dataset covers (``steps * batch_size`` blocks).

    Returns
    -------
    DemoRun
    """
    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.live_config import demo_generator, write_eval_sets
    from cod_monitor.demo.recipe import make_spec
    from cod_monitor.demo.tokenizer import build_tokenizer, save_tokenizer
    from cod_monitor.demo.train import TokenBlockDataset, build_model
    from cod_monitor.ladder import Ladder

    out_dir = Path(out_dir)
    ladder = str(SHIPPED_LADDER)
    spec = make_spec("quickstart", hidden, layers, role="target")
    generator = demo_generator(ladder)  # the generator the ladder's samples came from
    eval_sets = write_eval_sets(Ladder.load(ladder), generator, ["demo"], out_dir / "eval_sets")
    model = build_model(spec)
    config_dir = out_dir / "model-config"
    model.config.save_pretrained(config_dir)
    save_tokenizer(config_dir)
    dataset = TokenBlockDataset(generator, steps * spec.batch_size, spec.block_size,
                                seed=spec.data_seed)
    return DemoRun(model=model, tokenizer=build_tokenizer(), train_dataset=dataset,
                   ladder=ladder, eval_sets=eval_sets, config_dir=str(config_dir),
                   learning_rate=spec.learning_rate, batch_size=spec.batch_size,
                   block_size=spec.block_size)
