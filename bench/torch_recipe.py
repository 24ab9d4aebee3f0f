#!/usr/bin/env python3
"""The PyTorch reference (../shared/peers/torch_reference.py, or $REFERENCE) with the two
options of Cohort's time-to-accuracy recipe that it lacks, for bench/time-to-accuracy.sh:

  --label-smoothing E   the training loss as CrossEntropyLoss(label_smoothing=E); the test
                        loss stays plain cross-entropy, as Cohort's
  --tta flip            each test image's class probabilities averaged with its mirror's

Every other flag goes to the reference, which runs unchanged: the options are put in from
outside (its `F.cross_entropy` and `make_model` replaced in the loaded module), also in the
processes its DDP spawns, which import this file again and read the options from the
environment (COHORT_TORCH_LABEL_SMOOTHING, COHORT_TORCH_TTA).
"""
import importlib.util
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
path = os.environ.get("REFERENCE", os.path.join(here, "..", "..", "shared", "peers", "torch_reference.py"))
spec = importlib.util.spec_from_file_location("torch_reference", path)
reference = importlib.util.module_from_spec(spec)
sys.modules["torch_reference"] = reference
spec.loader.exec_module(reference)


def cross_entropy(input, target, reduction="mean", **kwargs):
    # The reference's training loss is the mean; its test loss is summed (reduction="sum").
    if reduction == "mean":
        kwargs.setdefault("label_smoothing", float(os.environ.get("COHORT_TORCH_LABEL_SMOOTHING", "0")))
    return F.cross_entropy(input, target, reduction=reduction, **kwargs)


class FlipTTA(nn.Module):
    """In evaluation, log of the mean of the image's and its mirror's probabilities: its
    arg-max is the averaged answer and its cross-entropy is -log of the mean at the label."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        y = self.inner(x)
        if self.training or os.environ.get("COHORT_TORCH_TTA", "none") != "flip":
            return y
        return ((F.softmax(y, 1) + F.softmax(self.inner(x.flip(3)), 1)) / 2).log()


functional = types.SimpleNamespace(**{name: getattr(F, name) for name in dir(F) if not name.startswith("__")})
functional.cross_entropy = cross_entropy
reference.F = functional
make_model = reference.make_model
reference.make_model = lambda a, x: FlipTTA(make_model(a, x))
reference_run = reference.run


def run(rank, a):
    # Defined here, so that the ranks DDP spawns import this file and its replacements.
    reference_run(rank, a)


def main():
    args, rest = sys.argv[1:], []
    while args:
        flag = args.pop(0)
        if flag == "--label-smoothing":
            os.environ["COHORT_TORCH_LABEL_SMOOTHING"] = args.pop(0)
        elif flag == "--tta":
            os.environ["COHORT_TORCH_TTA"] = args.pop(0)
        else:
            rest.append(flag)
    if os.environ.get("COHORT_TORCH_TTA", "none") not in ("none", "flip"):
        sys.exit("torch_recipe.py: --tta takes none or flip")
    sys.argv = [path] + rest
    reference.run = run
    reference.main()

if __name__ == "__main__":
    main()
