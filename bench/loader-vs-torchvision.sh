#!/usr/bin/env bash
# Cohort's loader against torchvision's ImageFolder with PIL, the peer a user would reach for,
# on one core each, alternating, in one command (docs/performance.md, "Your own data"):
# batches of 64 CIFAR-sized JPEGs read, decoded, converted to floats and normalised (and with
# --augment, cropped from a 4-pixel padding and flipped), in a shuffled order.
#
#   bench/loader-vs-torchvision.sh FOLDER [--runs 3] [--steps 200] [--augment]
#
# FOLDER: an image folder (FOLDER/train/CLASS/*.jpg), e.g. WORK/folder of bench/user-data.sh.
# Cohort: `cohort bench --data-only --loader-threads 1` (its loader thread fills the batches,
# the main thread takes them); torchvision: a DataLoader with num_workers=0 and
# torch.set_num_threads(1) over ImageFolder with ToTensor() and Normalize(0.5, 0.5). Both are
# pinned to CPU 0 (taskset) and unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in their own
# commands. PYTHON: a Python with torch, torchvision and pillow (default /tmp/torch-venv/bin/python).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
folder="$1"; shift
runs=3 steps=200 augment=""
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --augment) augment="--augment"; shift ;;
    *) echo "bench/loader-vs-torchvision.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-/tmp/torch-venv/bin/python}"
cohort="$here/.build/release/cohort"
[ -x "$cohort" ] || { echo "bench/loader-vs-torchvision.sh: build the release binary first" >&2; exit 2; }
ratios=()
for run in $(seq "$runs"); do
  c=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 "$cohort" bench --data-only --dataset folder \
      --data-dir "$folder" --normalize 0.5/0.5 --batch-size 64 --steps "$steps" --warmup 5 --loader-threads 1 $augment \
      | sed -n 's/.*: \([0-9.]*\) samples\/s.*/\1/p')
  t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 "$python" - "$folder/train" "$steps" "$augment" <<'EOF'
import sys, time
import torch
from torchvision import datasets, transforms
torch.set_num_threads(1)
root, steps, augment = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "--augment"
views = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
data = datasets.ImageFolder(root, transform=transforms.Compose(views + [transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]))
loader = iter(torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(0)))
for _ in range(5):
    next(loader)
start = time.perf_counter()
for _ in range(steps):
    next(loader)
print(steps * 64 / (time.perf_counter() - start))
EOF
)
  r=$(python3 -c "print(float('$c') / float('$t'))")
  ratios+=("$r")
  printf 'run %d  cohort %.0f samples/s  torchvision %.0f samples/s  ratio %.3f\n' "$run" "$c" "$t" "$r"
done
python3 -c "import sys, statistics as s; v=sorted(map(float, sys.argv[1:])); print(f'cohort / torchvision: min {v[0]:.3f} median {s.median(v):.3f} max {v[-1]:.3f}')" "${ratios[@]}"
