#!/usr/bin/env bash
# GPU check of the evaluators (issue 16, part 6): one command on a CUDA machine.
#
#   bash benchmarks/gpu_check.sh                     # results in $OUT, else benchmarks/results/gpu_check/
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh # print the install commands, run the tests with
#                                                    # the existing venv (they skip without CUDA)
#
# Steps, each under `timeout`, all under one deadline (GPU_CHECK_BUDGET_S, default 470 s):
#   1. nvidia-smi summary;
#   2. venv .venv-gpu (reused when present);
#   3. install torch===2.13.0 (PyPI's Linux x86_64 wheel, the CUDA 13 build; '===' refuses a local
#      '2.13.0+cpu' wheel that a find-links directory may offer, which '==' accepts) with the
#      package's hf and dev extras and transformers<5.20 (what vllm 0.32.0 pins, so step 5 changes
#      nothing); then print torch's CUDA version;
#   4. HF tests: pytest -m gpu tests/evaluators/test_gpu.py tests/evaluators/test_hf.py (not vllm);
#   5. install vllm==0.32.0 (the release that pins torch==2.13.0; 0.33 needs torch 2.14) and check
#      that it imports; on failure the vLLM tests are skipped, the HF results stand;
#   6. vLLM tests: pytest -m gpu -k vllm tests/evaluators/test_gpu.py.
# Output: summary.json and summary.txt (steps, seconds, exit codes, versions, per-test outcome and duration,
# the numbers the tests record), pytest_hf.txt, pytest_vllm.txt, install logs, nvidia_smi.txt.
# Never hangs: every step has a time limit (killed with SIGKILL 10 s after SIGTERM); pytest runs
# with -v, so the outcome of each finished test is in its .txt even when a step is cut short.
#
# Tolerances of tests/evaluators/test_gpu.py, measured on CPU (HF exact, 240 prompts, tiny Llama,
# against float32): bfloat16 mean |diff| 0.0013-0.0019, max 0.094, |mean diff| <= 0.00075, corr
# >= 0.99986; float16 mean |diff| <= 0.0002, max 0.0018. The tests allow about 5x that.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT_DIR=${OUT:-$ROOT/benchmarks/results/gpu_check}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
DRY=${GPU_CHECK_DRY_RUN:-0}
VENV=${GPU_CHECK_VENV:-.venv-gpu}
BASE_PY=${PYTHON:-python3}
TORCH_SPEC=${GPU_CHECK_TORCH:-torch===2.13.0}
VLLM_SPEC=${GPU_CHECK_VLLM:-vllm==0.32.0}
TRANSFORMERS_SPEC=${GPU_CHECK_TRANSFORMERS:-transformers>=4.45,<5.20}
BUDGET=${GPU_CHECK_BUDGET_S:-470}
START=$(date +%s)
STEPS="$OUT_DIR/steps.jsonl"
RECORD="$OUT_DIR/records.jsonl"
# a fresh result set: nothing of an earlier run in this directory is reported again
rm -f "$OUT_DIR"/junit_*.xml "$OUT_DIR"/summary.json "$OUT_DIR"/summary.txt
for f in "$STEPS" "$RECORD" "$OUT_DIR"/install.log "$OUT_DIR"/install_vllm.log "$OUT_DIR"/pytest_hf.txt \
         "$OUT_DIR"/pytest_vllm.txt; do : > "$f"; done
export COD_GPU_CHECK_RECORD="$RECORD"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-60}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1

remaining() { echo $(( BUDGET - ($(date +%s) - START) )); }

# step NAME LIMIT_S LOGFILE CMD...: run CMD under min(LIMIT_S, time left), log to LOGFILE,
# append {"step", "rc", "seconds", "limit_s"} to steps.jsonl; never fails the script.
step() {
    local name=$1 limit=$2 log=$3; shift 3
    local left; left=$(remaining)
    if (( limit > left )); then limit=$left; fi
    if (( limit < 0 )); then limit=0; fi
    local rc=0 t0 ms
    t0=$(date +%s%N)
    if (( limit < 5 )); then
        echo "== $name: skipped, the time budget is spent" | tee -a "$log"
        rc=125
    elif [[ $DRY == 1 && $name == install* ]]; then
        echo "== $name (dry run, limit ${limit}s): $*" | tee -a "$log"
    else
        echo "== $name (limit ${limit}s): $*" | tee -a "$log"
        timeout -k 10 "$limit" "$@" >> "$log" 2>&1 || rc=$?
    fi
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '{"step": "%s", "rc": %d, "seconds": %d.%03d, "limit_s": %d}\n' "$name" "$rc" \
        $(( ms / 1000 )) $(( ms % 1000 )) "$limit" >> "$STEPS"
    echo "   -> rc=$rc in $(( ms / 1000 )) s"
    return 0
}

last_rc() { tail -n 1 "$STEPS" | sed -E 's/.*"rc": ([0-9]+).*/\1/'; }

# 1. the GPU
if command -v nvidia-smi > /dev/null; then
    timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,cuda_version --format=csv \
        > "$OUT_DIR/nvidia_smi.txt" 2>&1 \
        || timeout 30 nvidia-smi > "$OUT_DIR/nvidia_smi.txt" 2>&1 || true
    cat "$OUT_DIR/nvidia_smi.txt"
else
    echo "no nvidia-smi on this machine" | tee "$OUT_DIR/nvidia_smi.txt"
    [[ $DRY == 1 ]] || echo "warning: no GPU visible; the gpu tests will skip"
fi

# 2. the venv
PY="$VENV/bin/python"
if [[ -x $PY ]]; then
    echo "== reusing $VENV"
elif [[ $DRY == 1 ]]; then
    echo "== (dry run) $BASE_PY -m venv $VENV"
else
    step venv 60 "$OUT_DIR/install.log" "$BASE_PY" -m venv "$VENV"
fi

# 3. torch (CUDA) + the package with its hf extra
step install_hf 240 "$OUT_DIR/install.log" \
    "$PY" -m pip install --progress-bar off "$TORCH_SPEC" "$TRANSFORMERS_SPEC" -e ".[dev,hf]"
CUDA_PROBE='import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())'
if [[ $DRY != 1 && -x $PY ]]; then
    TORCH_INFO=$(timeout 60 "$PY" -c "$CUDA_PROBE" 2>&1 || true)
    echo "torch: $TORCH_INFO" | tee -a "$OUT_DIR/install.log"
    if [[ $TORCH_INFO == *" None "* ]]; then
        echo "warning: torch is not a CUDA build; the gpu tests will skip"
    fi
fi

# 4. HF tests (first: their results stand whatever happens to vLLM)
if [[ -x $PY ]]; then
    step test_hf 150 "$OUT_DIR/pytest_hf.txt" \
        "$PY" -m pytest -m gpu -k "not vllm" -v -p no:cacheprovider --durations=0 \
        --junitxml="$OUT_DIR/junit_hf.xml" tests/evaluators/test_gpu.py tests/evaluators/test_hf.py
fi

# 5. vLLM, leaving the vLLM tests at least 150 s
VLLM_OK=0
VLLM_LIMIT=$(( $(remaining) - 150 ))
if (( VLLM_LIMIT > 200 )); then VLLM_LIMIT=200; fi
step install_vllm "$VLLM_LIMIT" "$OUT_DIR/install_vllm.log" \
    "$PY" -m pip install --progress-bar off "$VLLM_SPEC" "$TORCH_SPEC" "$TRANSFORMERS_SPEC"
if [[ $DRY != 1 && $(last_rc) == 0 ]]; then
    step import_vllm 90 "$OUT_DIR/install_vllm.log" "$PY" -c "import vllm; print('vllm', vllm.__version__)"
    if [[ $(last_rc) != 0 ]]; then
        # torchvision/torchaudio builds that do not match torch break `import vllm`
        # ("operator torchvision::nms does not exist"); the text models need none of them
        step uninstall_vision 60 "$OUT_DIR/install_vllm.log" \
            "$PY" -m pip uninstall -y torchvision torchaudio torchcodec
        step import_vllm_retry 90 "$OUT_DIR/install_vllm.log" "$PY" -c "import vllm; print('vllm', vllm.__version__)"
    fi
    if [[ $(last_rc) == 0 ]]; then
        VLLM_OK=1
    else
        # leave no half-working vllm behind: its tests then skip instead of failing
        step uninstall_vllm 60 "$OUT_DIR/install_vllm.log" "$PY" -m pip uninstall -y vllm
    fi
fi

# 6. vLLM tests
if [[ $VLLM_OK == 1 || ($DRY == 1 && -x $PY) ]]; then
    step test_vllm 400 "$OUT_DIR/pytest_vllm.txt" \
        "$PY" -m pytest -m gpu -k vllm -v -p no:cacheprovider --durations=0 \
        --junitxml="$OUT_DIR/junit_vllm.xml" tests/evaluators/test_gpu.py
fi

# summary.json
SUMMARY_PY=python3
[[ -x $PY ]] && SUMMARY_PY=$PY
timeout 60 "$SUMMARY_PY" - "$OUT_DIR" "$START" "$DRY" "$VLLM_OK" "$PY" <<'EOF' || echo "summary failed"
import json, os, subprocess, sys, time
import xml.etree.ElementTree as ET

out, start, dry, vllm_ok, py = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5]

def lines(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]

tests = []
for part in ("hf", "vllm"):
    path = os.path.join(out, f"junit_{part}.xml")
    if not os.path.exists(path):
        continue
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        message = None
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (el.get("message") or "")[:500]
        tests.append({"part": part, "test": f"{case.get('classname')}::{case.get('name')}",
                      "outcome": outcome, "seconds": round(float(case.get("time") or 0), 2),
                      **({"message": message} if message else {})})

versions = {}
if os.path.exists(py):
    probe = ("import json, importlib.metadata as m\n"
             "v = {}\n"
             "for d in ('torch', 'vllm', 'transformers', 'triton', 'flashinfer-python'):\n"
             "    try: v[d] = m.version(d)\n"
             "    except Exception: v[d] = None\n"
             "try:\n"
             "    import torch; v['cuda'] = torch.version.cuda; v['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None\n"
             "except Exception as e: v['torch_error'] = str(e)\n"
             "print(json.dumps(v))")
    try:
        versions = json.loads(subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=45).stdout)
    except Exception as exc:
        versions = {"error": str(exc)}

counts = {}
for t in tests:
    counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
summary = {
    "dry_run": dry, "total_s": round(time.time() - start, 1), "vllm_installed": vllm_ok,
    "counts": counts, "steps": lines("steps.jsonl"), "versions": versions,
    "tests": tests, "records": lines("records.jsonl"),
}
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=1)
text = [f"gpu_check: {summary['total_s']} s, dry_run={dry}, vllm_installed={vllm_ok}, {counts}",
        f"versions: {versions}", "", "steps (rc, seconds, limit):"]
text += [f"  {s['step']:20s} rc={s['rc']:<4d} {s['seconds']:8.1f} s  (limit {s['limit_s']} s)" for s in summary["steps"]]
text += ["", "tests (outcome, seconds):"]
text += [f"  {t['outcome']:8s} {t['seconds']:7.2f} s  {t['test']}" + (f"  -- {t['message'][:200]}" if t.get("message") else "")
         for t in tests]
text += ["", "recorded numbers:"] + [f"  {json.dumps(r)}" for r in summary["records"]]
with open(os.path.join(out, "summary.txt"), "w") as fh:
    fh.write("\n".join(text) + "\n")
print("\n".join(text[:4 + len(summary["steps"])]))
EOF
echo "results in $OUT_DIR"
