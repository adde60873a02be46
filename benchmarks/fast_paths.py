"""How far is a ResNet-50 training step from what this machine can do? One run, side by side.

1. The peak: the FLOP/s of a large matrix multiply in fp32 and in bf16
   (torch.utils.benchmark.Timer), the best this machine's matrix units reach.
2. The training step (forward, loss, backward, SGD step) of ResNet-50 on a
   fixed batch for each fast path:

   - ``torchvision``: torchvision's model, eager, fp32 -- the baseline;
   - ``resnet_edu``: the package's model with the same weights, eager, fp32;
   - ``channels_last``: the package's model and batch in NHWC memory layout;
   - ``bf16``: autocast to bfloat16 (convolutions and matmuls in bf16);
   - ``compile``: ``torch.compile`` of the model (inductor), fp32;
   - ``cl+bf16`` and ``cl+bf16+compile``: the combinations.

   The steps are timed interleaved (one step of each path per round, the order
   rotating every round), so a slow-down of a shared machine hits every path
   alike; each path's median is compared with the baseline's. FLOPs per step
   come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
   matrix multiplies, forward and backward), so "fraction of peak" is
   FLOPs / median time / the peak of the dtype the path computes in, that peak
   being measured between the rounds (one matrix multiply of each dtype per round),
   under the same load as the steps.

Where the CPU has bf16 matrix units (``amx_bf16`` or ``avx512_bf16`` in
/proc/cpuinfo, oneDNN's bf16 support in PyTorch), bf16 is expected to pay;
without them bf16 is emulated and usually slower than fp32: the script says
which case it found.

    python benchmarks/fast_paths.py                    # ResNet-50, batch 8 at 128x128
    python benchmarks/fast_paths.py --no-compile       # skip the minutes of compiling
    python benchmarks/fast_paths.py --quick            # CI-size smoke run (seconds)
    python benchmarks/fast_paths.py --device cuda --batch-size 64 --size 224
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torchvision
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from resnet_edu import models

PATHS = ("torchvision", "resnet_edu", "channels_last", "bf16", "compile",
         "cl+bf16", "cl+bf16+compile")
BASELINE = "torchvision"


# --------------------------------------------------------------------------------------
# What the hardware offers
# --------------------------------------------------------------------------------------
def cpu_bf16_units() -> Dict[str, bool]:
    """The CPU flags that mean bf16 matrix hardware, and whether oneDNN uses bf16."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    except OSError:          # not Linux: the flags stay unknown (all False)
        pass
    found = {name: name in flags for name in ("amx_bf16", "avx512_bf16", "amx_tile")}
    try:
        found["onednn_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        found["onednn_bf16"] = False
    return found


def matmul_timer(dtype: torch.dtype, n: int, device: torch.device) -> benchmark.Timer:
    """A Timer of an n x n by n x n matrix multiply (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return benchmark.Timer("torch.mm(a, b)", globals={"torch": torch, "a": a, "b": b},
                           num_threads=torch.get_num_threads())


def matmul_peak(dtype: torch.dtype, n: int, device: torch.device, seconds: float) -> float:
    """FLOP/s of the matrix multiply, the median of blocked runs (a quiet machine's peak)."""
    measurement = matmul_timer(dtype, n, device).blocked_autorange(min_run_time=seconds)
    return 2 * n ** 3 / measurement.median


# --------------------------------------------------------------------------------------
# The training steps
# --------------------------------------------------------------------------------------
@dataclass
class StepPath:
    name: str
    step: Callable[[], float]
    dtype: str                              # the dtype the convolutions compute in
    times: List[float] = field(default_factory=list)


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool):
    """One SGD step on (x, y); returns a function that runs it and returns the loss."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    autocast = (lambda: torch.autocast(x.device.type, dtype=torch.bfloat16)) if bf16 \
        else contextlib.nullcontext

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
        return loss.item()
    return step


def build_paths(args, device: torch.device) -> Dict[str, StepPath]:
    """Every path gets its own model, all with torchvision's initial weights."""
    torch.manual_seed(0)
    reference = getattr(torchvision.models, args.model)(weights=None).to(device).train()
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    paths = {}
    for name in args.paths:
        cl, bf16, comp = "cl" in name or name == "channels_last", "bf16" in name, "compile" in name
        if name == BASELINE:
            model = reference
        else:
            model = models.get_model(args.model).to(device).train()
            model.load_state_dict(reference.state_dict(), strict=True)
        xx = x
        if cl:
            model = model.to(memory_format=torch.channels_last)
            xx = x.contiguous(memory_format=torch.channels_last)
        if comp:
            model = torch.compile(model)
        paths[name] = StepPath(name, make_step(model, xx, y, bf16), "bf16" if bf16 else "fp32")
    return paths


def count_flops(args, device: torch.device) -> int:
    """FLOPs of one training step (forward + backward), counted on an uncompiled fp32 copy."""
    model = models.get_model(args.model).to(device).train()
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def time_interleaved(paths: Dict[str, StepPath], rounds: int, warmup: int,
                     peak_timers: Dict[str, benchmark.Timer]) -> Dict[str, float]:
    """Warm every path up (compiles happen here), then time one step of each per round, and
    the matrix multiply of each dtype too: on a shared machine the peak is then measured under
    the same load as the steps it is compared with (its times go to ``peak_timers[...]`` lists)."""
    compile_s = {}
    for p in paths.values():
        t0 = time.perf_counter()
        for _ in range(warmup):
            p.step()
        compile_s[p.name] = time.perf_counter() - t0
    order = list(paths.values())
    for r in range(rounds):
        shift = r % len(order)                      # rotate: each path runs first in turn
        for p in order[shift:] + order[:shift]:
            t0 = time.perf_counter()
            p.step()
            p.times.append(time.perf_counter() - t0)
        for times, timer in peak_timers.values():
            times.append(timer.timeit(3).median)
    return compile_s


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
def print_table(paths, flops: int, peaks: Dict[str, float], warm_s: Dict[str, float]) -> str:
    base = statistics.median(paths[BASELINE].times)
    print(f"\n{'path':<17}{'median ms':>10}{'min ms':>9}{'speed-up':>10}{'GFLOP/s':>9}"
          f"{'of peak':>9}{'warm-up s':>11}")
    best, best_speedup = BASELINE, 1.0
    for p in paths.values():
        med = statistics.median(p.times)
        rate = flops / med
        speedup = base / med
        if speedup > best_speedup:
            best, best_speedup = p.name, speedup
        print(f"{p.name:<17}{med * 1e3:>10.1f}{min(p.times) * 1e3:>9.1f}{speedup:>9.2f}x"
              f"{rate / 1e9:>9.1f}{rate / peaks[p.dtype]:>8.0%} {p.dtype:<5}"
              f"{warm_s[p.name]:>6.1f}")
    print(f"\nfastest path: {best}, {best_speedup:.2f}x the eager fp32 baseline")
    return best


def explain_bf16(units: Dict[str, bool], peaks: Dict[str, float], paths) -> None:
    hardware = units["amx_bf16"] or units["avx512_bf16"]
    ratio = peaks["bf16"] / peaks["fp32"]
    print(f"bf16 matrix units: {'yes' if hardware else 'no'} "
          f"({', '.join(k for k, v in units.items() if v) or 'none of amx_bf16, avx512_bf16'}); "
          f"bf16 / fp32 matmul peak = {ratio:.2f}x")
    if not hardware:
        print("  without bf16 units PyTorch emulates bf16 arithmetic (convert, multiply in "
              "fp32, round): expect bf16 autocast to be no faster, often slower, than fp32; "
              "on such a CPU use channels_last (and compile) in fp32.")
    elif "bf16" in paths and "resnet_edu" in paths:
        gain = statistics.median(paths["resnet_edu"].times) / statistics.median(paths["bf16"].times)
        print(f"  bf16 autocast alone: {gain:.2f}x the fp32 step; a step also runs memory-bound "
              f"BatchNorm, ReLU, additions and the optimizer, and casts weights every step, "
              f"which the matrix units do not speed up.")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=list(models.IMAGENET_MODELS))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=128, help="input height and width")
    p.add_argument("--rounds", type=int, default=10, help="timed steps per path")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per path first")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--peak-seconds", type=float, default=2.0,
                   help="minimum time spent measuring each matmul peak")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile paths")
    p.add_argument("--quick", action="store_true",
                   help="smoke-test size: resnet18, batch 2 at 64x64, 2 rounds, no compile")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.batch_size, args.size, args.rounds, args.warmup = "resnet18", 2, 64, 2, 1
        args.matmul_size, args.peak_seconds, args.no_compile = 256, 0.2, True
    for name in ("batch_size", "size", "rounds", "warmup", "matmul_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    args.paths = [n for n in PATHS if not (args.no_compile and "compile" in n)]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}")
    units = cpu_bf16_units() if device.type == "cpu" else {"amx_bf16": False,
                                                           "avx512_bf16": False}
    peaks = {name: matmul_peak(dtype, args.matmul_size, device, args.peak_seconds)
             for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"matmul peak ({args.matmul_size}x{args.matmul_size}), before the steps: fp32 "
          f"{peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    flops = count_flops(args, device)
    print(f"{args.model} training step, batch {args.batch_size} at {args.size}x{args.size}: "
          f"{flops / 1e9:.2f} GFLOP (forward + backward, flop_counter); "
          f"{args.rounds} interleaved rounds after {args.warmup} warm-up steps each")
    paths = build_paths(args, device)
    peak_timers = {name: ([], matmul_timer(dtype, args.matmul_size, device))
                   for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    warm_s = time_interleaved(paths, args.rounds, args.warmup, peak_timers)
    loaded = {name: 2 * args.matmul_size ** 3 / statistics.median(times)
              for name, (times, _) in peak_timers.items()}
    print(f"matmul peak measured between the steps (same load as the steps): fp32 "
          f"{loaded['fp32'] / 1e9:.0f} GFLOP/s, bf16 {loaded['bf16'] / 1e9:.0f} GFLOP/s; "
          f"'of peak' below uses these")
    print_table(paths, flops, loaded, warm_s)
    if device.type == "cpu":
        explain_bf16(units, loaded, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
