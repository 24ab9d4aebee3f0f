#!/usr/bin/env bash
# Cohort against the PyTorch reference on the same data and settings, alternating,
# several times, in one command; prints samples/s and final test accuracy of each run
# and the ratios of samples/s, Cohort / PyTorch, with their min, median and max.
#
#   bench/compare-pytorch.sh --model cnn --dataset cifar10 --data-dir DIR [--runs 3]
#       [--epochs 1] [--batch-size 64] [--hidden 128] [--optimizer adagrad] [--lr 0.01]
#       [--momentum M] [--nesterov] [--weight-decay W] [--limit N] [--threads T] [--ranks N] [--precision fp32|bf16] [--torch-precision fp32|bf16]
#       [--isa avx2]
#
# --precision sets both sides' (Cohort's --precision, PyTorch's bf16 autocast on the CPU);
# --torch-precision then sets PyTorch's alone, e.g. Cohort bf16 against PyTorch fp32.
#
# --isa avx2 runs both sides on their AVX2 kernels, as on a CPU without AVX-512: oneDNN limited
# by DNNL_MAX_CPU_ISA (Cohort's) and ONEDNN_MAX_CPU_ISA (PyTorch's bundled copy), PyTorch's own
# kernels by ATEN_CPU_CAPABILITY and MKL's by MKL_ENABLE_INSTRUCTIONS, and OpenBLAS's core type
# set to Haswell on both sides. Build Cohort for haswell to match
# (COHORT_TARGET_CPU=haswell swift build -c release).
#
# --ranks N runs Cohort with N MPI ranks (launch/train) and PyTorch with DDP over N
# processes (--world-size N); threads per rank default to cores / N on both sides.
# For Cohort it also prints the share of training time spent waiting on the allreduce.
#
# Both sides run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (in their own
# commands only), so each picks its own best kernels for this CPU. Needs the release
# binary, built for this CPU as PyTorch's kernels are
# (COHORT_TARGET_CPU=$(launch/cpu-target) swift build -c release), and a Python with torch (PYTHON, default
# /tmp/torch-venv/bin/python; see ../shared/peers/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-/tmp/torch-venv/bin/python}"
reference="${REFERENCE:-$here/../shared/peers/torch_reference.py}"
model=cnn dataset=cifar10 data_dir="" runs=3 epochs=1 batch=64 hidden=128 optimizer=adagrad lr=0.01 limit=0 threads=0 ranks=1
precision=fp32 torch_precision="" isa="" momentum=0 nesterov="" weight_decay=0
while (($#)); do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --hidden) hidden="$2"; shift 2 ;;
    --optimizer) optimizer="$2"; shift 2 ;;
    --lr) lr="$2"; shift 2 ;;
    --momentum) momentum="$2"; shift 2 ;;
    --nesterov) nesterov=1; shift ;;
    --weight-decay) weight_decay="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --torch-precision) torch_precision="$2"; shift 2 ;;
    --isa) isa="$2"; shift 2 ;;
    *) echo "compare-pytorch: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -n "$data_dir" ] || { echo "compare-pytorch: --data-dir is required" >&2; exit 2; }
[ -x "$here/.build/release/cohort" ] || { echo "compare-pytorch: build first: swift build -c release" >&2; exit 2; }
[ -x "$python" ] || { echo "compare-pytorch: no Python with torch at $python (set PYTHON)" >&2; exit 2; }
torch_data="$data_dir"
[ "$dataset" = cifar10 ] && [ -d "$data_dir/cifar-10-batches-bin" ] && torch_data="$data_dir/cifar-10-batches-bin"

cohort_args=(--model "$model" --dataset "$dataset" --data-dir "$data_dir" --optimizer "$optimizer" --lr "$lr"
             --epochs "$epochs" --batch-size "$batch" --hidden "$hidden" --quiet)
torch_args=(--model "$model" --dataset "$dataset" --data-dir "$torch_data" --optimizer "$optimizer" --lr "$lr"
            --epochs "$epochs" --batch-size "$batch" --hidden "$hidden")
[ "$limit" != 0 ] && { cohort_args+=(--limit "$limit"); torch_args+=(--limit "$limit"); }
[ "$momentum" != 0 ] && { cohort_args+=(--momentum "$momentum"); torch_args+=(--momentum "$momentum"); }
[ -n "$nesterov" ] && { cohort_args+=(--nesterov); torch_args+=(--nesterov); }
[ "$weight_decay" != 0 ] && { cohort_args+=(--weight-decay "$weight_decay"); torch_args+=(--weight-decay "$weight_decay"); }
[ "$threads" != 0 ] && { cohort_args+=(--threads "$threads"); torch_args+=(--threads "$threads"); }
torch_precision="${torch_precision:-$precision}"
cohort_args+=(--precision "$precision")
torch_args+=(--world-size "$ranks" --precision "$torch_precision")
# The environment of both sides: OpenBLAS's own choice of kernels, or AVX2 everywhere.
environment=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
case "$isa" in
  "") ;;
  avx2) environment+=(OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
                      MKL_ENABLE_INSTRUCTIONS=AVX2) ;;
  *) echo "compare-pytorch: --isa takes avx2, got $isa" >&2; exit 2 ;;
esac
cohort=("$here/.build/release/cohort" train)
((ranks > 1)) && cohort=("$here/launch/train" -n "$ranks")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ratios=()
for i in $(seq 1 "$runs"); do
  "${environment[@]}" "${cohort[@]}" "${cohort_args[@]}" --out "$tmp/run$i"
  read -r c comm cacc < <(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['samples_per_s'], s['comm_seconds'] / s['train_seconds'], s['final']['test_acc'])" "$tmp/run$i/summary.json")
  "${environment[@]}" "$python" "$reference" "${torch_args[@]}" > "$tmp/torch$i.jsonl"
  read -r t tacc < <(python3 -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; print(rows[-1]['samples_per_s'], rows[-2]['test_acc'])" "$tmp/torch$i.jsonl")
  r=$(python3 -c "print(f'{$c / $t:.3f}')")
  printf 'run %d (%d rank(s), cohort %s, pytorch %s): cohort %.1f samples/s (allreduce wait %.1f%% of training, final test acc %.4f), pytorch %.1f samples/s (final test acc %.4f), ratio %s\n' \
    "$i" "$ranks" "$precision" "$torch_precision" "$c" "$(python3 -c "print(100 * $comm)")" "$cacc" "$t" "$tacc" "$r"
  ratios+=("$r")
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = sorted(float(v) for v in sys.argv[1:])
print(f"cohort/pytorch samples/s ratio over {len(r)} runs: min {r[0]:.3f}  median {statistics.median(r):.3f}  max {r[-1]:.3f}")
PY
