#!/usr/bin/env python3
"""Replay a Cohort run in PyTorch, step for step, and compare.

  python3 interop/torch_replay.py RUN_DIR [--data-dir DIR] [--reference PATH/torch_reference.py]

RUN_DIR must come from `cohort train ... --save-initial` on one rank. The replay
starts the reference's PyTorch model from Cohort's initial.safetensors, draws the same
per-epoch permutations (Cohort's SplitMix64 stream and Fisher-Yates, reimplemented
here), trains with the same optimizer and batches, then prints the per-epoch training
loss of both and, per tensor, how far the final parameters are from Cohort's
model.safetensors. Agreement up to float rounding shows that the two trainers take
the same steps; what is left between their results is then the seed. The test
accuracy of both is printed after each epoch (on the run's test set, --test-limit included).
"""
import os, sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_eval import Run, read_safetensors, run_arguments  # noqa: E402

MASK = (1 << 64) - 1


class SplitMix64:
    """Cohort's generator (CohortTensor/Random.swift), bit for bit."""

    def __init__(self, seed):
        self.state = seed & MASK

    @classmethod
    def stream(cls, seed, stream, index):
        a = cls(seed)
        b = cls(a.next() ^ ((stream * 0xD1B54A32D192ED03) & MASK))
        c = cls(b.next() ^ ((index * 0x8CB92BA72F3D8DD7) & MASK))
        return cls(c.next())

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def index_below(self, bound):
        m = self.next() * bound
        if (m & MASK) < bound:
            threshold = ((1 << 64) - bound) % bound
            while (m & MASK) < threshold:
                m = self.next() * bound
        return m >> 64


def permutation(n, seed, epoch):
    """EpochSampler.startEpoch: Fisher-Yates from the (seed, 2, epoch) stream."""
    p = list(range(n))
    rng = SplitMix64.stream(seed, 2, epoch)
    for i in range(n - 1, 0, -1):
        j = rng.index_below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def main():
    a = run_arguments(__doc__)
    run = Run(a)
    c = run.config
    if c["world_size"] != 1:
        sys.exit("replay needs a one-rank run")
    x, y = run.split(train=True)
    xt, yt = run.split(train=False)
    if c.get("limit"):
        x, y = x[:c.get("limit")], y[:c.get("limit")]
    if c.get("test_limit"):
        xt, yt = xt[:c.get("test_limit")], yt[:c.get("test_limit")]
    model = run.model(x, "initial.safetensors")
    kwargs = {"lr": c["lr"]}
    if c["optimizer"] in ("sgd", "rmsprop"):
        kwargs["momentum"] = c["momentum"]
    if c["optimizer"] == "sgd":
        kwargs["nesterov"] = c["nesterov"]
    if c.get("weight_decay") is not None:
        kwargs["weight_decay"] = c.get("weight_decay")
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}[c["optimizer"]](model.parameters(), **kwargs)

    b, n = c["batch_size"], len(x)
    steps = n // b
    cohort_rows = [line.split(",") for line in open(os.path.join(a.run_dir, "metrics.csv")).read().split("\n")[1:] if line]
    for epoch in range(c["epochs"]):
        perm = torch.tensor(permutation(n, c["seed"], epoch))
        total = 0.0
        for s in range(steps):
            idx = perm[s * b:(s + 1) * b]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * b
        with torch.no_grad():
            correct = sum((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item() for i in range(0, len(xt), 1000))
        print(f"epoch {epoch + 1}: train loss pytorch {total / (steps * b):.6f}  cohort {float(cohort_rows[epoch][1]):.6f}"
              f"   test acc pytorch {correct / len(xt):.4f}  cohort {float(cohort_rows[epoch][4]):.4f}")
    final = read_safetensors(os.path.join(a.run_dir, "model.safetensors"))
    for name, value in model.state_dict().items():
        theirs = final[name]
        scale = theirs.abs().max().item()
        diff = (value - theirs).abs()
        print(f"{name:20s} max |diff| / max |value| = {diff.max().item() / scale:.2e}   "
              f"median {diff.median().item() / scale:.2e}")


if __name__ == "__main__":
    main()
