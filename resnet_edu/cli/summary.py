"""``python -m resnet_edu summary MODEL``: a model's per-stage table (shapes, parameters, MACs)."""
from __future__ import annotations

import argparse

from .argtypes import MAX_CLASSES, check_input_values, image_batch_shape, int_at_most
from .errors import EXIT_OK, EXIT_USAGE, CommandError

DESCRIPTION = "Print a per-stage table (output shape, parameters, MACs) of a model."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import MODEL_NAMES

    parser.epilog = "models: " + ", ".join(MODEL_NAMES)
    parser.add_argument("model", metavar="MODEL", help="one of: " + ", ".join(MODEL_NAMES))
    parser.add_argument("--num-classes", type=int_at_most(MAX_CLASSES, "a number of classes"),
                        default=None,
                        help="outputs of the last layer (default: 1000 ImageNet, 10 CIFAR)")
    parser.add_argument("--input-size", type=image_batch_shape, default=None, metavar="N,C,H,W",
                        help="input shape (default: 1,3,224,224 ImageNet, 1,3,32,32 CIFAR)")
    parser.add_argument("--stride-on", choices=["3x3", "1x1"], default=None,
                        help="bottleneck stride placement: 3x3 (torchvision) or 1x1 (the paper)")


def run(args: argparse.Namespace) -> int:
    from ..models import BOTTLENECK_MODELS, MODEL_NAMES, default_input_size, get_model
    from ..stats import format_summary, summarize

    if args.model not in MODEL_NAMES:
        raise CommandError(f"unknown model {args.model!r}; supported models: "
                           f"{', '.join(MODEL_NAMES)}", EXIT_USAGE)
    kwargs = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.stride_on is not None:
        if args.model not in BOTTLENECK_MODELS:
            raise CommandError(f"--stride-on applies to the bottleneck models "
                               f"{'/'.join(BOTTLENECK_MODELS)} only", EXIT_USAGE)
        kwargs["stride_on"] = args.stride_on
    try:
        model = get_model(args.model, **kwargs)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    size = args.input_size or default_input_size(args.model)
    check_input_values(size, "--input-size")
    try:
        rows = summarize(model, size)
    except (ValueError, RuntimeError) as exc:   # the model refuses this shape
        raise CommandError(f"--input-size {','.join(map(str, size))} does not fit "
                           f"{args.model}: {exc}", EXIT_USAGE) from None
    print(format_summary(rows, title=f"{args.model}, input {'x'.join(map(str, size))}"))
    return EXIT_OK
