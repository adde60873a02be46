"""Time one training step of resnet_edu's ResNet-50 against torchvision's, in interleaved pairs.

Both models get the same weights (torchvision's state_dict is loaded strictly),
the same batch and the same optimizer. Each round times one step of each model
with ``torch.utils.benchmark.Timer`` (which synchronises CUDA and fixes the
thread count), in alternating order, and keeps the ratio of the pair: a
slow-down of a shared machine then hits both halves of a pair alike. The
script prints the median of those ratios (target: at most 1.03).

    python benchmarks/train_step.py                 # ResNet-50, batch 8 at 128x128, CPU
    python benchmarks/train_step.py --model resnet18 --batch-size 16 --size 224 --rounds 20
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torchvision
from torch.utils.benchmark import Timer

from resnet_edu import models

TARGET = 1.03  # parity with torchvision: resnet_edu at most 3% slower


def make_step(model, x, y):
    """One SGD step: forward, loss, backward, update."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def time_pairs(steps: dict, rounds: int, number: int) -> tuple:
    """Per-model times and the per-round ratio ours / reference, order alternating."""
    timers = {name: Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads())
              for name, step in steps.items()}
    times = {name: [] for name in steps}
    ratios = []
    order = list(steps)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            times[name].append(timers[name].timeit(number).mean)
        ratios.append(times["resnet_edu"][-1] / times["torchvision"][-1])
    return times, ratios


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=list(models.IMAGENET_MODELS))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=128, help="input height and width")
    p.add_argument("--rounds", type=int, default=12, help="timed pairs")
    p.add_argument("--number", type=int, default=1, help="steps per timing")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(0)
    device = torch.device(args.device)
    reference = getattr(torchvision.models, args.model)(weights=None).to(device).train()
    ours = models.get_model(args.model).to(device).train()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    steps = {"resnet_edu": make_step(ours, x, y), "torchvision": make_step(reference, x, y)}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    if device.type == "cuda":
        torch.cuda.synchronize()

    times, ratios = time_pairs(steps, args.rounds, args.number)
    ratio = statistics.median(ratios)
    print(f"{args.model} training step, batch {args.batch_size} at {args.size}x{args.size}, "
          f"{device.type}, {torch.get_num_threads()} threads, {args.rounds} interleaved pairs")
    for name, ts in times.items():
        print(f"  {name:<12} median {statistics.median(ts) * 1e3:8.1f} ms   "
              f"(min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})")
    verdict = "within" if ratio <= TARGET else "OUTSIDE"
    print(f"  median of pair ratios resnet_edu / torchvision = {ratio:.3f}  "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}..."
          f"{statistics.quantiles(ratios, n=4)[2]:.3f}; {verdict} the {TARGET:.2f} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
