"""Reads a Cohort run's TensorBoard event files with the `tensorboard` package and checks
that they hold the scalars of its metrics.csv, epoch by epoch.

    python interop/check_tensorboard.py RUN

Needs `pip install tensorboard`. Exits 0 and prints a line per tag when everything
matches (to float32 precision, the type TensorBoard stores), 1 otherwise.
"""
import csv
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TAGS = {"loss/train": "train_loss", "loss/test": "test_loss", "accuracy/train": "train_acc",
        "accuracy/test": "test_acc", "throughput/samples_per_s": "samples_per_s", "lr": "lr"}


def main(run):
    with open(f"{run}/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    events = EventAccumulator(run, size_guidance={"scalars": 0})
    events.Reload()
    found = set(events.Tags()["scalars"])
    failures = []
    for tag, column in TAGS.items():
        if tag not in found:
            failures.append(f"{tag}: missing (tags: {sorted(found)})")
            continue
        scalars = {e.step: e.value for e in events.Scalars(tag)}
        expected = {int(r["epoch"]): float(r[column]) for r in rows}
        if sorted(scalars) != sorted(expected):
            failures.append(f"{tag}: steps {sorted(scalars)}, metrics.csv has epochs {sorted(expected)}")
            continue
        bad = [s for s in expected if not math.isclose(scalars[s], expected[s], rel_tol=1e-6, abs_tol=1e-12)]
        if bad:
            failures.append(f"{tag}: differs at epochs {bad}")
        else:
            print(f"{tag}: {len(scalars)} epoch(s) match metrics.csv")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_tensorboard.py RUN")
    sys.exit(main(sys.argv[1]))
