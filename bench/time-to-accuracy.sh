#!/usr/bin/env bash
# Time to a test accuracy of the report's CNN on CIFAR-10 (docs/training.md#time-to-accuracy),
# in one command on one machine: Cohort's 20-epoch recipe against the recipe made for the
# target, and Cohort against the PyTorch reference with that recipe.
#
#   bench/time-to-accuracy.sh --data-dir DIR [--ranks 2] [--target 0.717] [--eval-every 0.25]
#
# 1. Cohort, the 20-epoch recipe (README), stopped at the target.
# 2. Cohort, the target recipe: 3 epochs, peak 0.05, label smoothing 0.1, flip TTA.
#    Both evaluate every --eval-every of an epoch on all ranks; the times run from the first
#    step to the end of the evaluation that reached the target, with and without evaluation.
# 3. Cohort, the target recipe evaluated at epochs' ends only, as the reference evaluates.
# 4. The PyTorch reference (DDP over --ranks processes) with the target recipe (its label
#    smoothing and TTA put in by bench/torch_recipe.py): its time is the sum of its epochs'
#    training seconds up to the first epoch whose test accuracy reaches the target, compared
#    with 3's time without evaluation.
# Both sides run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (in their own commands only).
# Needs the release binary (COHORT_BINARY runs another build) and a Python with torch (PYTHON,
# default /tmp/torch-venv/bin/python).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-/tmp/torch-venv/bin/python}"
reference="${REFERENCE:-$here/../shared/peers/torch_reference.py}"
data_dir="" ranks=2 target=0.717 eval_every=0.25
while (($#)); do
  case "$1" in
    --data-dir) data_dir="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    --eval-every) eval_every="$2"; shift 2 ;;
    *) echo "time-to-accuracy: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -n "$data_dir" ] || { echo "time-to-accuracy: --data-dir is required" >&2; exit 2; }
[ -x "${COHORT_BINARY:-$here/.build/release/cohort}" ] || { echo "time-to-accuracy: build first: swift build -c release" >&2; exit 2; }
[ -x "$python" ] || { echo "time-to-accuracy: no Python with torch at $python (set PYTHON)" >&2; exit 2; }
environment=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

common=(--model cnn --dataset cifar10 --data-dir "$data_dir" --batch-size 64 --optimizer sgd --momentum 0.9 --nesterov
        --weight-decay 5e-4 --target-accuracy "$target" --quiet)
twenty=(--epochs 20 --augment --lr 0.025 --warmup-epochs 1 --lr-schedule cosine)
fast=(--epochs 3 --lr 0.05 --warmup-epochs 0.5 --lr-schedule cosine --label-smoothing 0.1 --tta flip)
frequent=(--eval-every "$eval_every" --eval-on all)

cohort() {  # name, flags...
  local name="$1"; shift
  "${environment[@]}" "$here/launch/train" -n "$ranks" "${common[@]}" "$@" --out "$tmp/$name" >/dev/null
  python3 - "$tmp/$name/summary.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); r = s["target"]["reached"]
if r is None:
    print(f"{sys.argv[2]}: not reached (best {s['best']['test_acc']:.4f})")
else:
    print(f"{sys.argv[2]}: {r['test_acc']:.4f} at epoch {r['epoch']:.2f}, {r['seconds']:.1f} s "
          f"({r['seconds'] - r['eval_seconds']:.1f} s without evaluation)")
PY
}

cohort twenty-epoch "${twenty[@]}" "${frequent[@]}" | tee "$tmp/twenty.txt"
cohort target-recipe "${fast[@]}" "${frequent[@]}" | tee "$tmp/fast.txt"
cohort target-recipe-at-epochs-ends "${fast[@]}" | tee "$tmp/at-epochs-ends.txt"
REFERENCE="$reference" "${environment[@]}" "$python" "$here/bench/torch_recipe.py" --model cnn --dataset cifar10 \
  --data-dir "$data_dir/cifar-10-batches-bin" --optimizer sgd --momentum 0.9 --nesterov --weight-decay 5e-4 --lr 0.05 \
  --lr-schedule cosine --warmup-epochs 0.5 --label-smoothing 0.1 --tta flip --epochs 3 --batch-size 64 \
  --world-size "$ranks" > "$tmp/torch.jsonl"
python3 - "$tmp" "$target" <<'PY'
import json, re, sys
tmp, target = sys.argv[1], float(sys.argv[2])
def seconds(name, with_eval=True):
    text = open(f"{tmp}/{name}.txt").read()
    m = re.search(r"at epoch ([\d.]+), ([\d.]+) s \(([\d.]+) s without", text)
    return None if m is None else (float(m[2]) if with_eval else float(m[3]))
elapsed = 0.0
torch_time = None
for line in open(f"{tmp}/torch.jsonl"):
    row = json.loads(line)
    if "epoch" not in row: continue
    elapsed += row["train_seconds"]
    print(f"pytorch target-recipe: epoch {row['epoch']} test acc {row['test_acc']:.4f}, {elapsed:.1f} s of training")
    if torch_time is None and row["test_acc"] >= target:
        torch_time = elapsed
long, fast = seconds("twenty"), seconds("fast")
if long and fast:
    print(f"target recipe / 20-epoch recipe, time to {target}: {fast / long:.3f} "
          f"(without evaluation {seconds('fast', False) / seconds('twenty', False):.3f})")
mine = seconds("at-epochs-ends", False)
if torch_time is None:
    print(f"pytorch target-recipe: not reached in its epochs")
elif mine:
    print(f"target recipe evaluated at epochs' ends, training seconds to {target}: cohort {mine:.1f}, "
          f"pytorch {torch_time:.1f}, pytorch / cohort {torch_time / mine:.2f}")
    print(f"cohort target recipe, evaluations included: {fast:.1f} s, against pytorch's training alone: {torch_time:.1f} s")
PY
