"""A 2-process DDP (gloo, CPU) ``Trainer.fit`` with the Lightning ``CODCallback``.

Run by ``test_lightning.py`` as ``python lightning_ddp.py ROOT``; Lightning's
subprocess launcher starts global rank 1 by running this script again. Every
checkpoint is evaluated as failing (accuracy 0), so rank 0's monitor asks to stop
after the first one; each rank writes what it saw to ``ROOT/rank-<r>.json``.
"""

import json
import sys
from pathlib import Path


def main(root: Path) -> None:
    # imported here: the monitor's spawned worker re-imports this file, and needs none of it
    from lightning_parts import (
        LitLlama,
        WaitForJudgement,
        ladder_scale_compute,
        loader,
        make_trainer,
        monitor_kwargs,
    )

    from cod_monitor.integrations.lightning import CODCallback
    from cod_monitor.monitor import DriftConfig

    cod = CODCallback(stop_on_drift=True, compute_from=ladder_scale_compute, drain_timeout=60,
                      trackers=[], **monitor_kwargs(root / "cod", accuracy=0.0,
                                                    drift=DriftConfig(patience=1)))
    trainer = make_trainer(root, 20, [WaitForJudgement(cod), cod], strategy="ddp", devices=2)
    trainer.fit(LitLlama(), loader())
    (root / f"rank-{trainer.global_rank}.json").write_text(json.dumps({
        "world_size": trainer.world_size,
        "global_step": trainer.global_step,
        "stopped_at": cod.stopped_at,
        "has_monitor": cod.monitor is not None,
        "submitted_steps": cod.submitted_steps,
        "observations": None if cod.summary_ is None
        else cod.summary_["benchmarks"]["synthetic"]["observations"],
    }))


if __name__ == "__main__":  # required: rank 1 and the evaluation worker re-run this file
    main(Path(sys.argv[1]))
