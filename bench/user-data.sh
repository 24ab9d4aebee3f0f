#!/usr/bin/env bash
# Your own data against the built-in readers, side by side in one command (docs/performance.md,
# "Your own data"): CIFAR-10 as the binary batches, as an image folder of its JPEGs, as arrays
# and as a pack, the report's CNN trained on each by 2 ranks, alternating, several times.
#
#   bench/user-data.sh WORK [--runs 3] [--epochs 1] [--seed 1] [--sources "binary folder ..."]
#
# WORK (made if missing) receives, from ../shared/data/cifar10-jpeg.tar.gz (needs Debian's
# python3-pil and python3-numpy):
#   WORK/cifar10         the binary batches (../shared/data/prepare_cifar10.py)
#   WORK/folder          train/CLASS/INDEX.jpg and test/CLASS/INDEX.jpg, the same JPEG bytes
#   WORK/arrays          x_train.npy ... of the binary batches' bytes, in their order
#   WORK/pack-arrays     `cohort data pack WORK/arrays --normalize 0.5/0.5`
#   WORK/pack-folder     `cohort data pack WORK/folder`
# then prints, per run, samples/s and test accuracy of each source, the ratios of samples/s
# against the binary batches with their min, median and max, and whether arrays and packs
# give the binary batches' parameters bit for bit (the parameter checksum of summary.json).
# The folder and its pack are normalised as the binary batches (--normalize 0.5/0.5) too, so
# that the sources differ only in how samples are read (and the folder in its order).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$1"; shift
runs=3 epochs=1 seed=1 only=""
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --sources) only="$2"; shift 2 ;;
    *) echo "bench/user-data.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
cohort="$here/.build/release/cohort"
[ -x "$cohort" ] || { echo "bench/user-data.sh: build the release binary first (COHORT_TARGET_CPU=\$(launch/cpu-target) swift build -c release)" >&2; exit 2; }
shared="$here/../shared/data"
mkdir -p "$work"

[ -d "$work/cifar10/cifar-10-batches-bin" ] || /usr/bin/python3 "$shared/prepare_cifar10.py" "$work/cifar10"
[ -d "$work/folder" ] || /usr/bin/python3 - "$shared/cifar10-jpeg.tar.gz" "$work/folder" <<'EOF'
import os, sys, tarfile
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
with tarfile.open(sys.argv[1]) as pack:
    for member in pack:
        split, name = member.name.split("/")
        index, label = name[:-4].split("_")
        folder = os.path.join(sys.argv[2], split, classes[int(label)])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, index + ".jpg"), "wb") as f:
            f.write(pack.extractfile(member).read())
EOF
[ -d "$work/arrays" ] || /usr/bin/python3 - "$work/cifar10/cifar-10-batches-bin" "$work/arrays" <<'EOF'
import os, sys
import numpy as np
source, out = sys.argv[1:]
os.makedirs(out, exist_ok=True)
def records(names):
    data = np.concatenate([np.fromfile(os.path.join(source, n), np.uint8).reshape(-1, 3073) for n in names])
    return data[:, 1:].reshape(-1, 3, 32, 32), data[:, 0].astype(np.int64)
for split, names in [("train", [f"data_batch_{i}.bin" for i in range(1, 6)]), ("test", ["test_batch.bin"])]:
    x, y = records(names)
    np.save(os.path.join(out, f"x_{split}.npy"), x)
    np.save(os.path.join(out, f"y_{split}.npy"), y)
EOF
[ -f "$work/pack-arrays/pack.json" ] || "$cohort" data pack "$work/arrays" --out "$work/pack-arrays" --normalize 0.5/0.5
[ -f "$work/pack-folder/pack.json" ] || "$cohort" data pack "$work/folder" --out "$work/pack-folder" --normalize 0.5/0.5

declare -A flags=(
  [binary]="--dataset cifar10 --data-dir $work/cifar10"
  [folder]="--dataset folder --data-dir $work/folder --normalize 0.5/0.5"
  [arrays]="--dataset arrays --data-dir $work/arrays --normalize 0.5/0.5"
  [pack-arrays]="--dataset pack --data-dir $work/pack-arrays"
  [pack-folder]="--dataset pack --data-dir $work/pack-folder"
)
sources=(binary folder arrays pack-arrays pack-folder)
[ -z "$only" ] || read -r -a sources <<< "$only"
declare -A ratios
for run in $(seq "$runs"); do
  declare -A rate=()
  for source in "${sources[@]}"; do
    out="$work/runs/$source-$run"
    rm -rf "$out"
    # shellcheck disable=SC2086
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$here/launch/train" -n 2 --model cnn ${flags[$source]} \
      --epochs "$epochs" --batch-size 64 --optimizer sgd --lr 0.01 --momentum 0.9 --augment --seed "$seed" --quiet --out "$out"
    read -r sps acc sum < <(/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['samples_per_s'], s['final']['test_acc'], s['parameter_checksum'])" "$out/summary.json")
    rate[$source]=$sps
    echo "run $run  $source: $sps samples/s, test accuracy $acc, parameters $sum"
  done
  [ "${sources[0]}" = binary ] || continue
  for source in "${sources[@]:1}"; do
    ratios[$source]+="$(/usr/bin/python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "${rate[$source]}" "${rate[binary]}") "
  done
done
[ "${sources[0]}" = binary ] || exit 0
for source in "${sources[@]:1}"; do
  /usr/bin/python3 -c "import sys, statistics as s; v=sorted(map(float, sys.argv[2:])); print(f'{sys.argv[1]} / binary samples/s: min {v[0]:.3f} median {s.median(v):.3f} max {v[-1]:.3f}')" "$source" ${ratios[$source]}
done
