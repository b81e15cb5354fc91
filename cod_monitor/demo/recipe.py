"""The one training recipe of the demo ladder and its target.

Every model of the demo — the ladder runs and the target — is trained from
scratch by the same rules, written down here as plain data so that the ladder
build (:mod:`cod_monitor.demo.build`), the target-alone trainer
(:func:`cod_monitor.demo.train.train_target`) and an HF ``Trainer``
(:meth:`RunSpec.training_arguments`) all agree:

======================  ======================================================
architecture            Llama (``LlamaForCausalLM``), random init, head_dim 16,
                        MLP width 8/3·d (rounded to 16), tied embeddings,
                        vocabulary 64 (the 61-token char tokenizer, padded)
parameters N            total parameters, embeddings included (``ModelInfo.params``)
tokens D(N)             ``600e3 * (N / 25760) ** 0.5`` (sub-linear, as in
                        FACTS.md; these budgets fit 2 CPU cores)
compute C               ``6 * N * D`` FLOPs, N total parameters
batch                   16 blocks x 64 tokens = 1,024 tokens per step
learning rate η(N)      ``3e-3 * (N / 1e5) ** -0.2``: larger models need a
                        lower constant rate (FACTS.md)
schedule                linear warm-up over 5% of the steps (at least 10),
                        then constant (the paper's ladder schedule; no decay)
optimizer               AdamW, betas (0.9, 0.95), eps 1e-8, weight decay 0.1
                        (not on norms), gradient clipping 1.0
data                    :class:`~cod_monitor.demo.tasks.TaskGenerator` training
                        stream (evaluation prompts rejected), packed into
                        blocks that start at a sample boundary
checkpoints             8 per ladder run, 16 for the target, evenly spaced in steps
                        (steps rounded up to a multiple of the checkpoint count)
======================  ======================================================

The training stream mixes the headline skills (addition, multi-step sums, sorting:
difficulty intrinsic to the sample) with knowledge recall (the stress benchmark); see
:mod:`cod_monitor.demo.tasks`. The skill families that appear abruptly after a number
of optimizer steps nearly independently of size (copy, reverse, key-value lookup) are
left out. Tokens grow as :math:`N^{0.5}` and the rate falls as :math:`N^{-0.2}`: with the
first demo ladder's :math:`N^{0.3}` and :math:`N^{-0.35}` the larger runs were so
under-trained on these skills that a larger run could end below a smaller one. The
sizes are chosen so that the whole ladder (two seeds per size) and five target seeds
build in about 20 minutes on 2 CPU cores.

:data:`LADDER_SHAPES` and :data:`TARGET_SHAPE` list the sizes; :func:`ladder_specs`
turns them into :class:`RunSpec` objects. Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from cod_monitor._validation import invalid

__all__ = [
    "HEAD_DIM",
    "LADDER_SEEDS",
    "TARGET_SEEDS",
    "VOCAB_SIZE",
    "LR_SCHEDULE",
    "BLOCK_SIZE",
    "BATCH_SIZE",
    "EVALUATOR",
    "LADDER_SHAPES",
    "TARGET_SHAPE",
    "RunSpec",
    "tokens_for",
    "learning_rate_for",
    "count_params",
    "make_spec",
    "seed_overrides",
    "ladder_specs",
    "target_spec",
    "anchor_specs",
    "micro_specs",
]

HEAD_DIM = 16
#: Embedding rows (the char tokenizer has 61 tokens; padded to a multiple of 8).
VOCAB_SIZE = 64
BLOCK_SIZE = 64
BATCH_SIZE = 16
#: The schedule's name as the HF ``Trainer`` knows it and as ``ladder.json`` records it
#: (``ModelInfo.lr_schedule``): linear warm-up, then constant.
LR_SCHEDULE = "constant_with_warmup"
#: Warm-up: this share of the steps, and at least ``MIN_WARMUP`` steps.
WARMUP_SHARE = 0.05
MIN_WARMUP = 10
WEIGHT_DECAY = 0.1
ADAM_BETAS = (0.9, 0.95)
GRAD_CLIP = 1.0
#: The evaluator config every demo checkpoint is scored with: exact pass rates under the
#: sampling policy at temperature 1 and top_p 0.7 (the evaluation sets are scored
#: ``'exact'`` and cut at :data:`~cod_monitor.demo.tasks.STOP`). The build records it in
#: ``build.json`` and as the ladder's evaluation settings; the live demo's monitor
#: evaluates its run with it.
EVALUATOR = {"backend": "hf", "mode": "exact", "temperature": 1.0, "top_p": 0.7,
             "batch_size": 256}
LADDER_CHECKPOINTS = 8
#: Training runs per ladder size (other seeds), whose pass rates the build averages
#: (the shipped ladder's count; one seed mixes a sample's difficulty with a run's luck).
LADDER_SEEDS = 2
TARGET_CHECKPOINTS = 16

#: (hidden size, layers) of the ladder runs, smallest first (1.2-2x apart in N).
LADDER_SHAPES: tuple[tuple[int, int], ...] = (
    (32, 1),    # 13.9k params
    (32, 2),    # 25.8k
    (32, 3),    # 37.6k
    (48, 2),    # 58.6k
    (48, 3),    # 86.4k
    (64, 2),    # 105k
)
#: (hidden size, layers) of the target run.
TARGET_SHAPE: tuple[int, int] = (96, 3)  # 339k params, 5.8x the largest ladder compute
#: Training runs of the target (other seeds); the mean of their accuracies is the truth
#: a forecast is judged against (one run's accuracy varies with its seeds).
TARGET_SEEDS = 5

# tokens D(N) = TOKENS_AT_REF * (N / PARAMS_REF) ** TOKENS_EXPONENT
TOKENS_AT_REF, PARAMS_REF, TOKENS_EXPONENT = 600e3, 25760, 0.5
# learning rate η(N) = LR_AT_REF * (N / LR_PARAMS_REF) ** -LR_EXPONENT
LR_AT_REF, LR_PARAMS_REF, LR_EXPONENT = 3e-3, 1e5, 0.2


def mlp_width(hidden: int) -> int:
    """Llama's MLP width 8/3·d, rounded to a multiple of 16."""
    return int(round(8 * hidden / 3 / 16)) * 16


def count_params(hidden: int, layers: int, vocab: int = VOCAB_SIZE) -> int:
    """Total parameters of the Llama shape (tied embeddings), without building it.

    Matches ``sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())``.
    """
    ff = mlp_width(hidden)
    per_layer = 4 * hidden * hidden + 3 * hidden * ff + 2 * hidden
    return vocab * hidden + layers * per_layer + hidden


def tokens_for(params: float) -> float:
    """Training tokens D(N) of the recipe (before rounding to whole steps)."""
    return TOKENS_AT_REF * (params / PARAMS_REF) ** TOKENS_EXPONENT


def learning_rate_for(params: float) -> float:
    """Peak (= constant) learning rate η(N) of the recipe."""
    return LR_AT_REF * (params / LR_PARAMS_REF) ** -LR_EXPONENT


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to train one run of the recipe.

    Attributes
    ----------
    name : str
        Run name (``"L3-d64x1"``, ``"target-d128x4"``).
    hidden, layers : int
        Llama shape (heads = hidden / 32).
    params : int
        Total parameters.
    tokens : int
        Training tokens (``steps * batch_size * block_size``).
    steps : int
    learning_rate : float
    warmup_steps : int
    batch_size, block_size : int
    checkpoint_steps : tuple of int
        Steps whose weights are evaluated: every ``steps / n_checkpoints`` steps,
        the last one is ``steps``.
    role : str
        ``'ladder'``, ``'target'`` or ``'anchor'``.
    data_seed, init_seed : int
        Seeds of the training stream and of the initialisation.
    """

    name: str
    hidden: int
    layers: int
    params: int
    tokens: int
    steps: int
    learning_rate: float
    warmup_steps: int
    batch_size: int
    block_size: int
    checkpoint_steps: tuple
    role: str = "ladder"
    data_seed: int = 1
    init_seed: int = 0

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step: ``batch_size * block_size``."""
        return self.batch_size * self.block_size

    def compute_at(self, step: int) -> float:
        """Training FLOPs after ``step`` steps: ``6 * N * tokens``."""
        return 6.0 * self.params * step * self.tokens_per_step

    @property
    def compute(self) -> float:
        """Training FLOPs of the whole run."""
        return self.compute_at(self.steps)

    def to_dict(self) -> dict:
        """The fields as plain Python, plus ``compute`` (for ``build.json``)."""
        out = asdict(self)
        out["checkpoint_steps"] = list(self.checkpoint_steps)
        out["compute"] = self.compute
        return out

    def llama_config(self):
        """The ``transformers.LlamaConfig`` of this run."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=self.hidden,
            intermediate_size=mlp_width(self.hidden),
            num_hidden_layers=self.layers,
            num_attention_heads=self.hidden // HEAD_DIM,
            num_key_value_heads=self.hidden // HEAD_DIM,
            head_dim=HEAD_DIM,
            max_position_embeddings=max(128, self.block_size),
            tie_word_embeddings=True,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=2,
            rms_norm_eps=1e-5,
            initializer_range=0.02,
        )

    def training_arguments(self, output_dir, **overrides):
        """HF ``TrainingArguments`` that reproduce the recipe with ``Trainer``.

        Use with :class:`cod_monitor.demo.train.TokenBlockDataset` (``spec.steps *
        spec.batch_size`` blocks) and :func:`cod_monitor.demo.train.build_model`.
        ``save_steps`` is the checkpoint spacing; ``overrides`` win (e.g.
        ``report_to="wandb"``, ``save_total_limit=2``).
        """
        from transformers import TrainingArguments

        spacing = self.checkpoint_steps[0] if self.checkpoint_steps else self.steps
        kwargs = dict(
            output_dir=str(output_dir),
            max_steps=self.steps,
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=1,
            learning_rate=self.learning_rate,
            lr_scheduler_type=LR_SCHEDULE,
            warmup_steps=self.warmup_steps,
            weight_decay=WEIGHT_DECAY,
            adam_beta1=ADAM_BETAS[0],
            adam_beta2=ADAM_BETAS[1],
            adam_epsilon=1e-8,
            max_grad_norm=GRAD_CLIP,
            optim="adamw_torch",
            save_strategy="steps",
            save_steps=spacing,
            logging_steps=max(1, spacing // 2),
            report_to="none",
            seed=self.init_seed,
            data_seed=self.data_seed,
            dataloader_num_workers=0,
            use_cpu=True,
            disable_tqdm=True,
            include_num_input_tokens_seen=True,
        )
        kwargs.update(overrides)
        return TrainingArguments(**kwargs)


def make_spec(
    name: str,
    hidden: int,
    layers: int,
    *,
    role: Literal["ladder", "target", "anchor"] = "ladder",
    tokens: int | None = None,
    n_checkpoints: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = BATCH_SIZE,
    block_size: int = BLOCK_SIZE,
    data_seed: int = 1,
    init_seed: int = 0,
) -> RunSpec:
    """A :class:`RunSpec` for a Llama shape, filled in by the recipe's rules.

    ``tokens`` and ``learning_rate`` default to :func:`tokens_for` and
    :func:`learning_rate_for`; ``n_checkpoints`` to 8 (ladder) or 16 (target).
    """
    if hidden % HEAD_DIM:
        raise invalid("make_spec", "hidden", f"a multiple of {HEAD_DIM}", hidden)
    params = count_params(hidden, layers)
    per_step = batch_size * block_size
    if tokens is None:
        tokens = tokens_for(params)
    if n_checkpoints is None:
        n_checkpoints = TARGET_CHECKPOINTS if role == "target" else LADDER_CHECKPOINTS
    # steps: a whole number of checkpoint spacings (Trainer's save_steps is regular)
    spacing = max(1, int(math.ceil(tokens / per_step / n_checkpoints)))
    steps = spacing * n_checkpoints
    ckpts = tuple(spacing * (k + 1) for k in range(n_checkpoints))
    return RunSpec(
        name, hidden, layers, params,
        tokens=steps * per_step,
        steps=steps,
        learning_rate=learning_rate_for(params) if learning_rate is None else learning_rate,
        batch_size=batch_size,
        block_size=block_size,
        checkpoint_steps=ckpts,
        warmup_steps=min(steps, max(MIN_WARMUP, int(round(WARMUP_SHARE * steps)))),
        role=role,
        data_seed=data_seed,
        init_seed=init_seed,
    )


def ladder_specs() -> list[RunSpec]:
    """The ladder runs of the shipped demo ladder (:data:`LADDER_SHAPES`), smallest first."""
    return [
        make_spec(f"L{i + 1}-d{h}x{n}", h, n) for i, (h, n) in enumerate(LADDER_SHAPES)
    ]


def target_spec(**overrides) -> RunSpec:
    """The target run (role ``'target'``); ``overrides`` go to :func:`make_spec`."""
    h, n = TARGET_SHAPE
    return make_spec(f"target-d{h}x{n}", h, n, role="target", **overrides)


def seed_overrides(seed: int) -> dict:
    """The seeds of a run trained "with seed ``seed``" (``cod-monitor demo --seed``):
    initialisation ``seed``, data order ``seed + 1``; seed 0 is the recipe's own run."""
    return {"init_seed": int(seed), "data_seed": int(seed) + 1}


#: (name, hidden, layers, token multiple, data seed, init seed) of the anchor runs.
ANCHOR_RUNS: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("anchor-d96x2-6x", 96, 2, 6, 3, 2),
    ("anchor-d128x3-4x", 128, 3, 4, 2, 1),
)


def anchor_specs() -> list[RunSpec]:
    """Two anchor runs: the paper's "existing external models" for the demo.

    COD's subset-to-full mapping is fitted on the ladder plus *anchors*, evaluations of
    models outside the ladder's recipe (the paper used Qwen2-72B) that pin the mapping
    above the ladder's accuracy. A pre-training team's anchor is typically an older,
    over-trained production model; here the ladder's two largest shapes trained on 6x
    and 4x their recipe tokens, with other data and initialisation seeds, 4 checkpoints
    each (role ``'anchor'``). Their compute is not used, only their accuracies. They are
    not part of the shipped ladder; ``benchmarks/bench_demo_anchors.py`` trains them.
    """
    return [
        make_spec(name, h, n, role="anchor", tokens=int(mult * tokens_for(count_params(h, n))),
                  n_checkpoints=4, data_seed=data_seed, init_seed=init_seed)
        for name, h, n, mult, data_seed, init_seed in ANCHOR_RUNS
    ]


def micro_specs(steps: int = 6, batch_size: int = 4) -> list[RunSpec]:
    """Three micro ladder runs and a micro target for tests: a few steps, tiny batches."""
    out = []
    for i, (h, n) in enumerate(((32, 1), (32, 2), (64, 1))):
        out.append(make_spec(f"micro{i + 1}-d{h}x{n}", h, n, tokens=steps * (i + 1) * batch_size
                             * BLOCK_SIZE, n_checkpoints=2, batch_size=batch_size))
    out.append(make_spec("micro-target-d64x2", 64, 2, role="target",
                         tokens=4 * steps * batch_size * BLOCK_SIZE, n_checkpoints=3,
                         batch_size=batch_size))
    return out


