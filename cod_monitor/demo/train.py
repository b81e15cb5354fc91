"""Training of the demo runs: data, model, the recipe's loop, per-checkpoint pass rates.

Requires torch and transformers (``pip install 'cod_monitor[hf]'``).

Two ways to train a :class:`~cod_monitor.demo.recipe.RunSpec`, same recipe:

- :func:`train_run` with ``backend="trainer"`` (default): HF ``Trainer`` with
  :meth:`RunSpec.training_arguments` and a :class:`TokenBlockDataset`; the
  live-monitor demo attaches its callback to exactly this setup;
- ``backend="loop"``: a plain PyTorch loop with the same optimizer, schedule,
  clipping and data (a little faster on tiny models; see the benchmark).

:func:`train_target` trains (or resumes) the target run alone with the Trainer and
returns its checkpoints as :class:`cod_monitor.records.Checkpoint` records.

Both take an optional :class:`~cod_monitor.demo.sabotage.Sabotage`: its learning-rate
multiplier is composed with the schedule's ``LambdaLR`` multiplier, and the blocks
consumed during a ``corrupt`` window come from :class:`SabotagedBlockDataset`.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from cod_monitor._validation import check_choice
from cod_monitor.demo.recipe import (
    ADAM_BETAS,
    EVALUATOR,
    GRAD_CLIP,
    WEIGHT_DECAY,
    RunSpec,
    target_spec,
)
from cod_monitor.demo.sabotage import DATA_KINDS, Sabotage, shuffle_answers
from cod_monitor.demo.tasks import TaskGenerator
from cod_monitor.demo.tokenizer import build_tokenizer, encode_fast, save_tokenizer
from cod_monitor.evaluators.hf import HFEvaluator
from cod_monitor.exceptions import MissingExtraError
from cod_monitor.records import Checkpoint, EvalResult

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("cod_monitor.demo.train", ("torch", "transformers"), "hf") from exc

__all__ = [
    "TokenBlockDataset",
    "SabotagedBlockDataset",
    "build_model",
    "train_run",
    "train_target",
    "evaluate_model",
    "validation_loss",
]

logger = logging.getLogger(__name__)


class TokenBlockDataset(torch.utils.data.Dataset):
    """Blocks of training tokens from the task generator, generated on demand.

    Block ``i`` is a deterministic function of ``(generator.seed, seed, i)``: it
    packs whole training samples (never an evaluation prompt) starting at a sample
    boundary, cut at ``block_size`` tokens. Random access makes it a map-style
    dataset that ``Trainer`` can shuffle and resume.

    Parameters
    ----------
    generator : TaskGenerator
    n_blocks : int
        Length of the dataset (``steps * batch_size`` for one epoch of a run).
    block_size : int
    seed : int or str, default 1
        Stream seed; use another value for validation data.

    Examples
    --------
    >>> ds = TokenBlockDataset(TaskGenerator(eval_size=60), n_blocks=4, block_size=64)
    >>> ds[0]["input_ids"].shape
    torch.Size([64])
    """

    def __init__(self, generator: TaskGenerator, n_blocks: int, block_size: int, seed=1):
        self.generator = generator
        self.n_blocks = int(n_blocks)
        self.block_size = int(block_size)
        self.seed = seed

    def __len__(self) -> int:
        return self.n_blocks

    def block_ids(self, i: int, *, corrupt_share: float = 0.0) -> list[int]:
        """Token ids of block ``i``.

        Parameters
        ----------
        i : int
        corrupt_share : float, default 0.0
            When > 0, the block's examples keep their prompts and this share of them get
            the answer of another example (:func:`~cod_monitor.demo.sabotage.shuffle_answers`
            on the block's own stream): the ``corrupt`` sabotage.
        """
        samples = self.generator.train_samples(seed=f"{self.seed}:{i}")
        if corrupt_share > 0:
            samples = shuffle_answers(samples, share=corrupt_share, seed=f"{self.seed}:{i}")
        ids: list[int] = []
        for s in samples:
            ids.extend(encode_fast(s.text))
            if len(ids) >= self.block_size:
                return ids[: self.block_size]
        raise AssertionError("unreachable")  # pragma: no cover

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n_blocks:
            raise IndexError(i)
        ids = torch.tensor(self.block_ids(i), dtype=torch.long)
        return {"input_ids": ids, "labels": ids.clone()}


class SabotagedBlockDataset(torch.utils.data.Dataset):
    """A :class:`TokenBlockDataset` whose blocks consumed inside a ``corrupt`` or
    ``corrupt_ramp`` window are corrupted (shuffled answers, in the share of examples
    :meth:`~cod_monitor.demo.sabotage.Sabotage.corrupt_share` gives for the step).

    Which blocks a step consumes depends on the sampler's shuffle, so the window is
    applied by consumption order: the ``n``-th block fetched (from 0) belongs to
    optimizer step ``n // batch_size + 1``. That holds for one epoch read in order by
    one process (``dataloader_num_workers=0``, as the recipe sets; the data loader's
    look-ahead changes when a block is read, not its place in the order). Set
    :attr:`position` to ``steps_done * batch_size`` before resuming a run (the
    ``Trainer`` skips the batches already seen without reading them);
    :func:`train_run` and :func:`train_target` do.

    Parameters
    ----------
    base : TokenBlockDataset
    sabotage : Sabotage
        Only the data kinds (``corrupt``, ``corrupt_ramp``) change blocks; other kinds
        read through.
    total_steps, batch_size : int
        The run's optimizer steps and blocks per step.

    Attributes
    ----------
    position : int
        Blocks fetched so far (including skipped ones after a resume).
    corrupted : int
        Blocks fetched with at least a share of their examples corrupted, so far.
    """

    def __init__(self, base: TokenBlockDataset, sabotage: Sabotage, total_steps: int,
                 batch_size: int):
        self.base = base
        self.sabotage = sabotage
        self.total_steps = int(total_steps)
        self.batch_size = int(batch_size)
        self.position = 0
        self.corrupted = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self.base):
            raise IndexError(i)
        step = self.position // self.batch_size + 1
        self.position += 1
        share = self.sabotage.corrupt_share(step, self.total_steps)
        if share > 0:
            self.corrupted += 1
            ids = torch.tensor(self.base.block_ids(i, corrupt_share=share), dtype=torch.long)
            return {"input_ids": ids, "labels": ids.clone()}
        return self.base[i]


def _training_dataset(spec: RunSpec, generator: TaskGenerator, sabotage: Sabotage | None):
    """The run's blocks, wrapped for a sabotage of the data."""
    dataset = TokenBlockDataset(generator, spec.steps * spec.batch_size, spec.block_size,
                                seed=spec.data_seed)
    if sabotage is not None and sabotage.kind in DATA_KINDS:
        return SabotagedBlockDataset(dataset, sabotage, spec.steps, spec.batch_size)
    return dataset


def _compose_lr(scheduler, sabotage: Sabotage, total_steps: int) -> None:
    """Multiply a ``LambdaLR``'s multipliers by the sabotage's, in place.

    The scheduler's constructor already set the rate of the next step from the plain
    multiplier, so it is recomputed here (matters when the fault starts at step 1).
    """
    if not hasattr(scheduler, "lr_lambdas"):
        raise TypeError(f"a sabotage needs a LambdaLR schedule, got {type(scheduler).__name__}; "
                        "use lr_scheduler_type='constant_with_warmup' (the recipe's)")
    # closures, not callable objects: LambdaLR.state_dict saves an object's __dict__
    scheduler.lr_lambdas = [
        (lambda k, f=f: f(k) * sabotage.lr_factor(k, total_steps))
        for f in scheduler.lr_lambdas
    ]
    for group, base, f in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                              scheduler.lr_lambdas):
        group["lr"] = base * f(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def _trainer_class(spec: RunSpec, sabotage: Sabotage | None):
    """``Trainer``, or a subclass whose schedule carries the sabotage's multiplier."""
    from transformers import Trainer

    if sabotage is None or sabotage.kind in DATA_KINDS:
        return Trainer

    class SabotagedTrainer(Trainer):
        def create_scheduler(self, num_training_steps, optimizer=None):
            fresh = self.lr_scheduler is None
            scheduler = super().create_scheduler(num_training_steps, optimizer)
            if fresh:
                _compose_lr(scheduler, sabotage, spec.steps)
            return scheduler

    return SabotagedTrainer


def _position_sync(dataset):
    """A callback that sets a corrupt dataset's position at the start of training (a
    resumed run starts after the blocks already consumed)."""
    from transformers import TrainerCallback

    class _Sync(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            dataset.position = int(state.global_step) * dataset.batch_size

    return _Sync()


def build_model(spec: RunSpec):
    """A freshly initialised ``LlamaForCausalLM`` of the run (seeded by ``init_seed``)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.init_seed)
    model = LlamaForCausalLM(spec.llama_config())
    n = sum(p.numel() for p in model.parameters())
    if n != spec.params:  # the recipe's count is what ladder.json records
        raise RuntimeError(f"parameter count {n} differs from the recipe's {spec.params}")
    return model


# ----------------------------------------------------------------------- evaluation


def evaluate_model(
    model,
    generator: TaskGenerator,
    *,
    tokenizer=None,
    temperature: float = EVALUATOR["temperature"],
    top_p: float = EVALUATOR["top_p"],
) -> EvalResult:
    """Exact pass rates of ``model`` on every evaluation sample of ``generator``.

    The HF evaluator of :data:`~cod_monitor.demo.recipe.EVALUATOR` (exact mode, batch
    size 256) with the demo tokenizer: the evaluator of the demo ladder's build. The
    model's training mode is left as it was.

    Parameters
    ----------
    model : transformers causal LM
        In memory, on its own device.
    generator : TaskGenerator
        Its :meth:`~cod_monitor.demo.tasks.TaskGenerator.eval_set` is evaluated.
    tokenizer : transformers tokenizer, optional
        Default :func:`~cod_monitor.demo.tokenizer.build_tokenizer`.
    temperature : float, default 1.0
    top_p : float, default 0.7

    Returns
    -------
    EvalResult
        ``eval_set="demo"``, sample ids in the generator's order.
    """
    if tokenizer is None:
        tokenizer = build_tokenizer()
    config = {k: v for k, v in EVALUATOR.items() if k != "backend"}
    evaluator = HFEvaluator(**{**config, "temperature": temperature, "top_p": top_p})
    return evaluator.evaluate((model, tokenizer), generator.eval_set())


@torch.no_grad()
def validation_loss(model, blocks: torch.Tensor) -> float:
    """Mean next-token loss (nats) on held-out token blocks of shape (n, block_size)."""
    was_training = model.training
    model.eval()
    loss = float(model(input_ids=blocks, labels=blocks).loss)
    if was_training:
        model.train()
    return loss


def validation_blocks(generator: TaskGenerator, block_size: int, n: int = 32) -> torch.Tensor:
    """``n`` held-out training-distribution blocks (their own seed; eval prompts rejected)."""
    ds = TokenBlockDataset(generator, n, block_size, seed="validation")
    return torch.stack([ds[i]["input_ids"] for i in range(n)])


# -------------------------------------------------------------------------- training


class _Progress:
    """Plain progress lines on stderr (tqdm is not required)."""

    def __init__(self, name: str, total: int, enabled: bool, every_s: float = 10.0):
        self.name, self.total, self.enabled, self.every_s = name, total, enabled, every_s
        self.t0 = self.last = time.perf_counter()

    def update(self, step: int, loss: float | None = None, force: bool = False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.every_s and step < self.total:
            return
        self.last = now
        rate = step / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        loss_txt = "" if loss is None else f" loss {loss:.3f}"
        sys.stderr.write(
            f"[{self.name}] step {step}/{self.total} ({100 * step / self.total:.0f}%)"
            f"{loss_txt} {now - self.t0:.0f}s elapsed, eta {eta:.0f}s\n"
        )
        sys.stderr.flush()


def _decay_groups(model) -> list[dict]:
    """AdamW parameter groups as ``Trainer`` builds them: no decay on norms and biases."""
    from transformers.trainer_pt_utils import get_parameter_names

    try:
        from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    except ImportError:  # pragma: no cover
        ALL_LAYERNORM_LAYERS = [torch.nn.LayerNorm]
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    forbidden = list(ALL_LAYERNORM_LAYERS) + [LlamaRMSNorm]
    decay = set(get_parameter_names(model, forbidden))
    decay = {n for n in decay if "bias" not in n}
    params = dict(model.named_parameters())
    return [
        {"params": [p for n, p in params.items() if n in decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0},
    ]


def _lr_lambda(spec: RunSpec) -> Callable[[int], float]:
    warm = spec.warmup_steps

    def factor(step: int) -> float:  # transformers' constant_with_warmup
        return step / max(1, warm) if step < warm else 1.0

    return factor


def _train_loop(spec, model, dataset, on_checkpoint, on_step, progress, sabotage=None):
    opt = torch.optim.AdamW(
        _decay_groups(model), lr=spec.learning_rate, betas=ADAM_BETAS, eps=1e-8
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(spec))
    if sabotage is not None:
        _compose_lr(sched, sabotage, spec.steps)
    gen = torch.Generator().manual_seed(spec.data_seed)
    order = torch.randperm(len(dataset), generator=gen).tolist()
    ckpts = set(spec.checkpoint_steps)
    model.train()
    losses = []
    for step in range(1, spec.steps + 1):
        idx = order[(step - 1) * spec.batch_size : step * spec.batch_size]
        batch = torch.stack([dataset[i]["input_ids"] for i in idx])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        progress.update(step, losses[-1])
        if on_step is not None:
            on_step(step)
        if step in ckpts and on_checkpoint is not None:
            on_checkpoint(step, model)
    return losses


def _train_trainer(spec, model, dataset, on_checkpoint, on_step, progress, output_dir, save,
                   resume, callbacks, sabotage=None):
    from transformers import PrinterCallback, TrainerCallback

    ckpts = set(spec.checkpoint_steps)
    losses: list[float] = []

    class _Hook(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            progress.update(state.global_step, losses[-1] if losses else None)
            if on_step is not None:
                on_step(state.global_step)
            if state.global_step in ckpts and on_checkpoint is not None:
                on_checkpoint(state.global_step, model)

    overrides = {} if save else {"save_strategy": "no"}
    args = spec.training_arguments(output_dir, **overrides)
    extra = [_position_sync(dataset)] if isinstance(dataset, SabotagedBlockDataset) else []
    trainer = _trainer_class(spec, sabotage)(
        model=model,
        args=args,
        train_dataset=dataset,
        callbacks=[_Hook(), *extra, *(callbacks or [])],
    )
    trainer.remove_callback(PrinterCallback)  # logs go to our progress lines instead
    trainer.train(resume_from_checkpoint=resume or None)
    return losses


def train_run(
    spec: RunSpec,
    generator: TaskGenerator,
    *,
    backend: Literal["trainer", "loop"] = "trainer",
    on_checkpoint: Callable | None = None,
    on_step: Callable | None = None,
    threads: int | None = None,
    output_dir=None,
    save_checkpoints: bool = False,
    resume: bool | str = False,
    callbacks: Sequence = (),
    progress: bool = False,
    sabotage: Sabotage | None = None,
):
    """Train one run of the recipe from scratch (or resume it, Trainer only).

    Parameters
    ----------
    spec : RunSpec
    generator : TaskGenerator
        Source of the training stream (evaluation prompts excluded).
    backend : {'trainer', 'loop'}, default 'trainer'
    on_checkpoint : callable, optional
        ``on_checkpoint(step, model)`` at every step of ``spec.checkpoint_steps``
        (in-memory weights; put the model back in train mode if you change it).
    on_step : callable, optional
        ``on_step(step)`` after every optimizer step (e.g. to change thread counts).
    threads : int, optional
        ``torch.set_num_threads`` for this process.
    output_dir : path, optional
        Trainer output directory (a temporary one when ``None``).
    save_checkpoints : bool, default False
        Write ``checkpoint-<step>`` directories (Trainer) at the checkpoint steps.
    resume : bool or str, default False
        ``resume_from_checkpoint`` for the Trainer.
    callbacks : sequence of TrainerCallback
        Extra Trainer callbacks (e.g. the COD monitor's).
    progress : bool, default False
        Write progress lines to stderr.
    sabotage : Sabotage, optional
        A fault to inject (:mod:`cod_monitor.demo.sabotage`), either backend.

    Returns
    -------
    model : LlamaForCausalLM
        The trained model.
    info : dict
        ``losses`` (per logged step), ``wall_s``, ``tokens_per_s``; with a ``corrupt``
        sabotage also ``corrupted_blocks`` (blocks read corrupted) and ``blocks_read``.
    """
    check_choice("train_run", "backend", backend, ("trainer", "loop"))
    if threads is not None:
        torch.set_num_threads(int(threads))
    model = build_model(spec)
    dataset = _training_dataset(spec, generator, sabotage)
    bar = _Progress(spec.name, spec.steps, progress)
    t0 = time.perf_counter()
    if backend == "loop":
        losses = _train_loop(spec, model, dataset, on_checkpoint, on_step, bar, sabotage)
    else:
        with tempfile.TemporaryDirectory(prefix="cod-demo-") as tmp:
            losses = _train_trainer(spec, model, dataset, on_checkpoint, on_step, bar,
                                    output_dir or tmp, save_checkpoints, resume, callbacks,
                                    sabotage)
    wall = time.perf_counter() - t0
    bar.update(spec.steps, losses[-1] if losses else None, force=True)
    model.eval()
    info = {"losses": losses, "wall_s": wall, "tokens_per_s": spec.tokens / wall}
    if isinstance(dataset, SabotagedBlockDataset):
        info["corrupted_blocks"] = dataset.corrupted
        info["blocks_read"] = dataset.position
    return model, info


def train_target(
    output_dir,
    *,
    spec: RunSpec | None = None,
    generator: TaskGenerator | None = None,
    resume: bool = False,
    callbacks: Sequence = (),
    threads: int | None = None,
    progress: bool = False,
    sabotage: Sabotage | None = None,
    **training_overrides,
) -> list[Checkpoint]:
    """Train (or resume) the demo's target run alone with the HF ``Trainer``.

    The same recipe as the ladder build; weights are written as
    ``output_dir/checkpoint-<step>`` at every checkpoint step, with the tokenizer, so
    that an evaluator can load each one with ``from_pretrained``.

    Parameters
    ----------
    output_dir : path
    spec : RunSpec, optional
        Default :func:`cod_monitor.demo.recipe.target_spec`.
    generator : TaskGenerator, optional
        Default ``TaskGenerator(seed=0)`` (the shipped ladder's benchmark).
    resume : bool, default False
        Continue from the last ``checkpoint-*`` in ``output_dir``.
    callbacks : sequence of TrainerCallback
        E.g. ``CODCallback``.
    threads : int, optional
    progress : bool, default False
    sabotage : Sabotage, optional
        A fault to inject (:mod:`cod_monitor.demo.sabotage`): its learning-rate
        multiplier goes into the schedule, a ``corrupt`` window into the data.
    **training_overrides
        Passed to :meth:`RunSpec.training_arguments` (e.g. ``save_total_limit``,
        ``report_to``).

    Returns
    -------
    list of Checkpoint
        One per checkpoint directory present at the end, by step (``compute =
        6 * params * tokens``).
    """
    from transformers import TrainerCallback

    spec = spec or target_spec()
    generator = generator or TaskGenerator(seed=0)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if threads is not None:
        torch.set_num_threads(int(threads))
    model = build_model(spec)
    dataset = _training_dataset(spec, generator, sabotage)
    tokenizer = build_tokenizer()
    args = spec.training_arguments(output_dir, **training_overrides)
    bar = _Progress(spec.name, spec.steps, progress)

    class _Bar(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            bar.update(state.global_step)

    extra = [_position_sync(dataset)] if isinstance(dataset, SabotagedBlockDataset) else []
    trainer = _trainer_class(spec, sabotage)(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        callbacks=[_Bar(), *extra, *callbacks])
    if progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress lines instead
    trainer.train(resume_from_checkpoint=bool(resume) or None)
    save_tokenizer(output_dir)
    out = []
    for d in sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(d.name.split("-")[1])
        out.append(Checkpoint(step=step, compute=spec.compute_at(step),
                              tokens=float(step * spec.tokens_per_step), path=str(d)))
    return out
