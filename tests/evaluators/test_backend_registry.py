"""make_evaluator, register_backend and the parameter checks of the backends."""

import json
import subprocess
import sys

import pytest

from cod_monitor.evaluators import (
    EvaluatorConfigError,
    HFEvaluator,
    VLLMEvaluator,
    make_evaluator,
    register_backend,
)
from cod_monitor.exceptions import ParameterError


def test_backends_are_imported_when_first_built():
    code = (
        "import sys, json; from cod_monitor.evaluators import make_evaluator;"
        "a = [m for m in ('cod_monitor.evaluators.hf', 'cod_monitor.evaluators.vllm') if m in sys.modules];"
        "make_evaluator({'backend': 'vllm'});"
        "print(json.dumps([a, [m for m in ('cod_monitor.evaluators.hf', 'cod_monitor.evaluators.vllm') "
        "if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], ["cod_monitor.evaluators.vllm"]]


def test_register_backend_by_path_and_by_class(monkeypatch):
    from cod_monitor.evaluators import registry

    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))
    register_backend("hf-by-path", "cod_monitor.evaluators.hf:HFEvaluator")
    register_backend("hf-by-class", HFEvaluator)
    assert registry.backends()[-2:] == ("hf-by-path", "hf-by-class")
    for name in ("hf-by-path", "hf-by-class"):
        ev = make_evaluator({"backend": name, "mode": "exact"})
        assert type(ev) is HFEvaluator and ev.mode == "exact"
    with pytest.raises(EvaluatorConfigError, match="'evaluator' parameter of register_backend"):
        register_backend("bad", object)


@pytest.mark.parametrize("backend, cls", [("hf", HFEvaluator), ("vllm", VLLMEvaluator)])
def test_make_evaluator_round_trips_config(backend, cls):
    cfg = {"backend": backend, "mode": "exact", "n": 100, "temperature": 1.0, "top_p": 0.7,
           "max_new_tokens": None, "batch_size": 16, "seed": 0, "device": "cpu"}
    ev = make_evaluator(cfg)
    assert isinstance(ev, cls)
    full = ev.get_config()
    assert {k: full[k] for k in cfg} == cfg
    assert make_evaluator(full).get_config() == full
    with ev as same:
        assert same is ev


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"backend": "jax"}, "'backend' parameter .* Got 'jax'"),
        ({"backend": "hf", "beams": 4}, r"Unknown key\(s\) \['beams'\]\. The accepted keys are "
         r"\['backend', 'batch_size', 'checkpoint_format', 'config_dir', 'dcp_mapping', 'device'"),
        ({"backend": "hf", "mdoe": "exact"},
         r"Unknown key\(s\) \['mdoe'\] \(did you mean 'mode' for 'mdoe'\?\)\. The accepted keys"),
        ({"mode": "greedy"}, "'mode' parameter of HFEvaluator must be a str among"),
        ({"top_p": 0.0}, r"'top_p' parameter of HFEvaluator must be a float in the range \(0, 1\]. Got 0.0 instead."),
        ({"temperature": -1}, "'temperature' parameter"),
        ({"n": 0}, r"'n' parameter of HFEvaluator must be an int in the range \[1, inf\)"),
        ({"max_new_tokens": 0}, "'max_new_tokens' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"backend": "vllm", "exact_topk": 0}, "'exact_topk' parameter of VLLMEvaluator"),
    ],
)
def test_invalid_config(cfg, match):
    with pytest.raises(EvaluatorConfigError, match=match) as info:
        make_evaluator(cfg)
    assert isinstance(info.value, ParameterError) and isinstance(info.value, ValueError)
