"""Recipe, training data, training loops and exact pass rates of the demo."""

import math

import numpy as np
import pytest

from cod_monitor.demo.recipe import (
    BATCH_SIZE,
    HEAD_DIM,
    BLOCK_SIZE,
    TARGET_SHAPE,
    count_params,
    ladder_specs,
    learning_rate_for,
    make_spec,
    micro_specs,
    seed_overrides,
    target_spec,
)

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cod_monitor.demo.tasks import STOP, TaskGenerator  # noqa: E402
from cod_monitor.demo.tokenizer import build_tokenizer  # noqa: E402
from cod_monitor.demo.train import (  # noqa: E402
    TokenBlockDataset,
    build_model,
    evaluate_model,
    train_run,
    train_target,
)


@pytest.fixture(scope="module")
def gen():
    return TaskGenerator(seed=0, eval_size=120)


def test_recipe_is_one_consistent_ladder():
    specs = ladder_specs()
    target = target_spec()
    assert len(specs) >= 6 and target.role == "target"
    params = [s.params for s in specs]
    ratios = np.array(params[1:]) / np.array(params[:-1])
    assert ((ratios >= 1.2) & (ratios <= 3.2)).all(), ratios
    assert all(b.tokens > a.tokens for a, b in zip(specs, specs[1:]))
    assert all(b.learning_rate < a.learning_rate for a, b in zip(specs, specs[1:]))
    assert target.compute >= 4 * specs[-1].compute
    for s in [*specs, target]:
        assert s.compute == 6.0 * s.params * s.tokens
        assert s.tokens == s.steps * BATCH_SIZE * BLOCK_SIZE
        assert len(s.checkpoint_steps) >= 4 and s.checkpoint_steps[-1] == s.steps
        gaps = np.diff([0, *s.checkpoint_steps])
        assert (gaps == gaps[0]).all()  # regular: Trainer's save_steps
        assert 10 <= s.warmup_steps < s.steps
    assert math.isclose(learning_rate_for(1e5), 3e-3)


def test_seed_zero_is_the_recipes_own_target_and_other_seeds_differ():
    assert target_spec(**seed_overrides(0)) == target_spec()
    seeded = [target_spec(**seed_overrides(k)) for k in range(1, 4)]
    assert len({(s.init_seed, s.data_seed) for s in seeded}) == 3
    assert all((s.init_seed, s.data_seed) != (0, 1) for s in seeded)


def test_param_count_matches_the_built_model():
    for spec in [*ladder_specs()[:3], micro_specs()[0]]:
        model = build_model(spec)
        assert sum(p.numel() for p in model.parameters()) == spec.params
        assert model.config.head_dim == HEAD_DIM
    assert count_params(*TARGET_SHAPE) == target_spec().params


def test_training_arguments_reproduce_the_recipe(tmp_path):
    spec = ladder_specs()[2]
    args = spec.training_arguments(tmp_path)
    assert args.max_steps == spec.steps
    assert args.learning_rate == spec.learning_rate
    assert args.lr_scheduler_type == "constant_with_warmup"
    assert args.warmup_steps == spec.warmup_steps
    assert args.per_device_train_batch_size == spec.batch_size
    assert args.save_steps == spec.checkpoint_steps[0]
    assert spec.training_arguments(tmp_path, save_total_limit=2).save_total_limit == 2


def test_blocks_are_deterministic_start_at_a_sample_and_never_hold_eval_prompts(gen):
    ds = TokenBlockDataset(gen, n_blocks=200, block_size=BLOCK_SIZE, seed=1)
    again = TokenBlockDataset(gen, n_blocks=200, block_size=BLOCK_SIZE, seed=1)
    assert torch.equal(ds[7]["input_ids"], again[7]["input_ids"])
    assert not torch.equal(ds[7]["input_ids"], ds[8]["input_ids"])
    tok = build_tokenizer()
    eval_prompts = {s.prompt for _, s in gen.eval_samples}
    first_chars = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["input_ids"].shape == (BLOCK_SIZE,)
        assert torch.equal(item["input_ids"], item["labels"])
        text = tok.decode(item["input_ids"].tolist())
        first_chars.add(text[0])
        for line in text.split(STOP)[:-1]:  # whole samples only
            assert line[: line.index("=") + 1] not in eval_prompts
    assert first_chars <= set("0123456789rc#abcdefghijklmnopqrstuvwxyz")
    with pytest.raises(IndexError):
        ds[200]


def test_evaluate_model_gives_exact_pass_rates_and_keeps_the_training_mode(gen):
    spec = micro_specs()[1]
    model, _ = train_run(spec, gen, backend="loop", threads=1)
    model.train()
    result = evaluate_model(model, gen, top_p=1.0)
    assert model.training
    assert result.mode == "exact" and result.eval_set == "demo"
    assert result.sample_ids == gen.eval_set().ids
    # a tiny model neither always nor never answers right (sanity of the bookkeeping)
    assert ((result.pass_rates[:5] > 0) & (result.pass_rates[:5] < 1)).all()


@pytest.mark.parametrize("backend", ["loop", "trainer"])
def test_training_lowers_the_loss_and_calls_back_at_checkpoints(gen, backend):
    spec = make_spec("t", 32, 1, tokens=12 * 8 * BLOCK_SIZE, n_checkpoints=3, batch_size=8)
    seen, steps = [], []
    model, info = train_run(spec, gen, backend=backend, threads=1,
                            on_checkpoint=lambda step, m: seen.append(step),
                            on_step=steps.append)
    assert seen == list(spec.checkpoint_steps)
    assert steps == list(range(1, spec.steps + 1))
    assert info["tokens_per_s"] > 0 and not model.training
    if backend == "loop":
        assert info["losses"][-1] < info["losses"][0]


def test_train_target_writes_and_resumes_checkpoints(gen, tmp_path):
    spec = make_spec("tt", 32, 1, role="target", tokens=4 * 4 * BLOCK_SIZE, n_checkpoints=2,
                     batch_size=4)
    ckpts = train_target(tmp_path, spec=spec, generator=gen, threads=1)
    assert [c.step for c in ckpts] == list(spec.checkpoint_steps)
    assert ckpts[-1].compute == spec.compute
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoTokenizer.from_pretrained(tmp_path)
    AutoModelForCausalLM.from_pretrained(ckpts[-1].path)
    # resuming a finished run is a no-op that keeps the checkpoints
    again = train_target(tmp_path, spec=spec, generator=gen, threads=1, resume=True)
    assert [c.step for c in again] == [c.step for c in ckpts]
