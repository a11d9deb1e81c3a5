"""Time the analysis of resnet152 at 3x224x224 against a plain meta pass, in the same run.

Baseline: torchvision's resnet152 on the meta device, forward hooks on every module, one
forward pass under torch's FlopCounterMode (the straightforward way to get shapes and
multiply-adds). Timed with the model already built ("pass") and including building it on meta
("build + pass"), since an analysis starts from an architecture.

Ours: resnet_gui.engine.analysis.analyse, "cold" with its block cache emptied before every
run, and "after an edit" (the cache warm, the number of classes changed each run, as when
the window re-analyses after an edit). Median of 5 runs each, after one warm-up run of each
(the first meta op of a process imports torch._dynamo, about 1-3 s, paid once).

Run: python benchmarks/bench_analysis.py   (from the repository root)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from resnet_gui.engine import analysis  # noqa: E402
from resnet_gui.arch.presets import build_preset  # noqa: E402

REPEATS = 5


def build_reference() -> torch.nn.Module:
    with torch.device("meta"):
        return torchvision.models.resnet152()


def reference_pass(model: torch.nn.Module) -> int:
    shapes: dict[str, torch.Size] = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape))
        for name, module in model.named_modules()
    ]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, 224, 224, device="meta"))
    for handle in handles:
        handle.remove()
    return counter.get_total_flops() // 2


def median_ms(function, setup=lambda: None) -> float:
    times = []
    for _ in range(REPEATS):
        setup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    arch = build_preset("resnet152")
    prebuilt = build_reference()
    reference_macs = reference_pass(prebuilt)  # warm-up
    ours = analysis.analyse(arch)  # warm-up
    assert ours.total_macs == reference_macs, (ours.total_macs, reference_macs)

    baseline_pass = median_ms(lambda: reference_pass(prebuilt))
    baseline_full = median_ms(lambda: reference_pass(build_reference()))
    cold = median_ms(lambda: analysis.analyse(arch), setup=analysis.clear_cache)
    classes = iter(range(2, 2 + REPEATS))
    analysis.analyse(arch)
    edited = median_ms(lambda: analysis.analyse(arch.replace(num_classes=next(classes))))

    print(f"resnet152 at 3x224x224, median of {REPEATS} (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    print(f"  baseline meta pass + hooks + FlopCounterMode:     {baseline_pass:7.1f} ms")
    print(f"  baseline incl. building the model on meta:        {baseline_full:7.1f} ms")
    print(f"  analyse(), cold cache:                            {cold:7.1f} ms "
          f"({baseline_pass / cold:.1f}x faster than the pass alone; target <= 200 ms)")
    print(f"  analyse() after an edit (warm block cache):       {edited:7.1f} ms")
    print(f"  multiply-adds {ours.total_macs:,} (equal to FlopCounterMode's), "
          f"parameters {ours.total_params:,}")


if __name__ == "__main__":
    main()
