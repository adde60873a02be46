"""Time one training step of resnet_edu's ResNet-50 against torchvision's, interleaved.

Both models get the same weights (torchvision's state_dict is loaded strictly),
the same batch, the same optimizer. Rounds alternate A, B, B, A so that a
slow-down of the shared machine hits both equally; the script prints the
median time of each and their ratio (target: within 5%, i.e. 0.95..1.05).

    python benchmarks/train_step.py                 # ResNet-50, batch 8 at 128x128, CPU
    python benchmarks/train_step.py --model resnet18 --batch-size 16 --size 224 --rounds 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from resnet_edu import models  # noqa: E402


def make_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
    return step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=list(models.IMAGENET_MODELS))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=128, help="input height and width")
    p.add_argument("--rounds", type=int, default=12, help="timed rounds per model")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)

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
    times = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["resnet_edu"] / med["torchvision"]
    print(f"{args.model} training step, batch {args.batch_size} at {args.size}x{args.size}, "
          f"{device.type}, {torch.get_num_threads()} threads, {args.rounds} interleaved rounds")
    for name, ts in times.items():
        print(f"  {name:<12} median {med[name] * 1e3:8.1f} ms   "
              f"(min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})")
    verdict = "within" if abs(ratio - 1) <= 0.05 else "OUTSIDE"
    print(f"  time ratio resnet_edu / torchvision = {ratio:.3f}  ({verdict} the 5% target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
