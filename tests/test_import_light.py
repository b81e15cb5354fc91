import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "wandb", "vllm", "ray", "accelerate", "pandas"]


def test_import_cod_monitor_pulls_in_no_heavy_dependency():
    code = (
        "import sys, json, cod_monitor, cod_monitor.cli;"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
