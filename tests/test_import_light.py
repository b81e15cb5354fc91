import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "tokenizers", "wandb", "vllm", "ray", "accelerate", "pandas"]


def test_import_cod_monitor_pulls_in_no_heavy_dependency():
    # the evaluators' backend registry names its backends without importing them
    code = (
        "import sys, json, cod_monitor, cod_monitor.cli, cod_monitor.evaluators.registry;"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_evaluation_worker_imports_skip_the_forecasting_stack():
    # a spawned pool worker imports the pool module; scikit-learn would cost it ~1 s
    code = (
        "import sys, json, cod_monitor.runtime.pool, cod_monitor.evaluators;"
        "print(json.dumps([m for m in ['sklearn', 'scipy.optimize'] if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_forecasting_stack_skips_scikit_learn():
    # `cod-monitor predict` and the monitor's forecast thread: scikit-learn (with pandas
    # and scipy.stats) would cost ~1 s of CPU at every start; only the clustering
    # ablations and the reference loop import it
    code = (
        "import sys, json, cod_monitor.cli.predict, cod_monitor.methods.registry,"
        " cod_monitor.cod.routing, cod_monitor.cod.trajectory, cod_monitor.monitor.forecasts;"
        "print(json.dumps([m for m in ['sklearn', 'pandas', 'scipy.stats'] if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_lazy_packages_resolve_every_public_name():
    import importlib

    for name in ("cod_monitor", "cod_monitor.monitor", "cod_monitor.trackers",
                 "cod_monitor.integrations", "cod_monitor.evaluators"):
        package = importlib.import_module(name)
        assert set(package.__all__) <= set(dir(package)), name
        for attr in package.__all__:
            if attr in ("WandbTracker", "CODCallback", "LocalTracker", "render_report"):
                continue  # need optional extras; their modules are tested on their own
            assert getattr(package, attr) is not None, (name, attr)
    import pytest

    import cod_monitor

    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(cod_monitor, "no_such_name")
