"""A script that trains a tiny Llama with a CODCallback and configures no logging.

Run by ``test_hf_log_stream.py`` as ``python hf_console.py ROOT``: what the monitor
shows on the console goes to stderr, read by the test.
"""

import sys
from pathlib import Path


def main(root: Path) -> None:
    # imported here: the monitor's spawned worker re-imports this file, and needs none of it
    from test_hf_callback import (
        TinyData,
        WaitForJudgement,
        monitor_kwargs,
        tiny_llama,
        training_args,
    )
    from transformers import Trainer

    from cod_monitor.integrations.hf import CODCallback

    cod = CODCallback(drain_timeout=60, trackers=[],
                      **monitor_kwargs(root / "cod", root / "trainer"))
    Trainer(model=tiny_llama(), args=training_args(root / "trainer", 10),
            train_dataset=TinyData(), callbacks=[cod, WaitForJudgement(cod)]).train()


if __name__ == "__main__":  # required: the evaluation worker re-runs this file
    main(Path(sys.argv[1]))
