"""A training process with a CODMonitor, for the kill-and-resume test.

Usage: python monitor_child.py LADDER_DIR CKPT_ROOT OUT_DIR STEPS_JSON

Submits every checkpoint listed in STEPS_JSON (step, tokens), prints ``submitted``,
then waits for the evaluations (the test kills it with SIGKILL while they run).
"""

import json
import sys

from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy, RunGeometry


def main():
    ladder, ckpt_root, out_dir, steps = sys.argv[1:5]
    steps = json.loads(steps)
    monitor = CODMonitor(
        ladder, {"synthetic": "synthetic"}, {"sleep": 0.25}, out_dir=out_dir,
        forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
        pool=PoolConfig(job_fn="monitor_jobs:from_snapshot",
                        queue_policy=QueuePolicy(max_pending=100)),
        run=RunGeometry(params=3.97e6),
    )
    for step, tokens in steps:
        monitor.on_checkpoint(step, tokens=tokens, path=f"{ckpt_root}/checkpoint-{step}")
    print("submitted", flush=True)
    monitor.wait()
    monitor.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
