#!/usr/bin/env bash
# The transformers against their PyTorch peers, side by side in one command, alternating
# (docs/performance.md, "Transformers"): gpt-char against ../shared/peers/torch_lm.py with the
# peer's defaults on ../shared/data/kjv.txt, as 1 process x 2 threads and as 2 ranks x 1 thread
# (DDP); transformer-rows against torch_reference.py --model transformer on MNIST, 1 x 2; and
# once the GPT at nanoGPT's GPU width (6 layers, 6 heads, width 384, 256-byte context, batch 64).
#
#   bench/transformers-vs-pytorch.sh [--runs 3] [--steps 300] [--wide-steps 10] [--rows-limit 12800]
#
# Prints each measurement (tokens/s or samples/s, evaluation excluded on both sides) and, per
# configuration, the median of the runs and the ratio of the medians. Needs the release build
# and PyTorch in /tmp/torch-venv (../shared/peers/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs=3 steps=300 wide=10 rows=12800
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --wide-steps) wide="$2"; shift 2 ;;
    --rows-limit) rows="$2"; shift 2 ;;
    *) echo "bench/transformers-vs-pytorch.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
cohort="$here/.build/release/cohort" python=/tmp/torch-venv/bin/python peers="$here/../shared/peers"
text="$here/../shared/data/kjv.txt" mnist="$here/../shared/data/mnist"
[ -x "$cohort" ] || { echo "bench/transformers-vs-pytorch.sh: build the release binary first" >&2; exit 2; }
[ -x "$python" ] || { echo "bench/transformers-vs-pytorch.sh: no PyTorch in /tmp/torch-venv (../shared/peers/README.md)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The peer's defaults: AdamW (0.9, 0.99), decay 0.1 on matrices, clip 1, 100 warmup steps, cosine to 1e-4.
gpt=(--dataset text --data-file "$text" --batch-size 12 --optimizer adamw --lr 1e-3 --betas 0.9,0.99 --weight-decay 0.1
     --decay-on matrices --clip-grad-norm 1 --warmup-steps 100 --lr-schedule cosine --min-lr 1e-4 --eval-windows 500 --quiet)
rows_flags=(--dataset mnist --data-dir "$mnist" --limit "$rows" --optimizer adamw --lr 0.002 --weight-decay 0.05
            --clip-grad-norm 1 --batch-size 64)

# samples/s of a Cohort run directory's only epoch; tokens/s where its samples are T-token windows.
cohort_rate() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]+"/summary.json")); print(round(s["samples_per_s"]*int(sys.argv[2]),1))' "$1" "$2"; }
peer_rate() { tail -1 | python3 -c 'import json,sys; s=json.loads(sys.stdin.read()); print(s.get("tokens_per_s") or s["samples_per_s"])'; }

declare -A results
measure() {  # NAME VALUE
  results[$1]+="$2 "
  printf '%-28s %10s\n' "$1" "$2"
}
for run in $(seq 1 "$runs"); do
  echo "run $run"
  "$cohort" train --model gpt-char "${gpt[@]}" --steps "$steps" --out "$work/g" && measure "cohort gpt 1x2" "$(cohort_rate "$work/g" 64)"; rm -rf "$work/g"
  measure "torch gpt 1x2" "$("$python" "$peers/torch_lm.py" --data-file "$text" --steps "$steps" --eval-every 100000 | peer_rate)"
  mpirun -np 2 --bind-to core "$cohort" train --model gpt-char "${gpt[@]}" --steps "$steps" --out "$work/g2" \
    && measure "cohort gpt 2x1" "$(cohort_rate "$work/g2" 64)"; rm -rf "$work/g2"
  measure "torch gpt ddp 2x1" "$("$python" "$peers/torch_lm.py" --data-file "$text" --steps "$steps" --eval-every 100000 --world-size 2 | peer_rate)"
  "$cohort" train --model transformer-rows "${rows_flags[@]}" --test-limit 500 --quiet --out "$work/r" \
    && measure "cohort rows 1x2" "$(cohort_rate "$work/r" 1)"; rm -rf "$work/r"
  measure "torch rows 1x2" "$("$python" "$peers/torch_reference.py" --model transformer "${rows_flags[@]}" --epochs 1 | peer_rate)"
done
echo "nanoGPT's width, once"
"$cohort" train --model gpt-char --model-param layers=6,heads=6,embd=384 "${gpt[@]}" --block-size 256 --batch-size 64 \
  --steps "$wide" --warmup-steps 1 --eval-windows 8 --out "$work/w" && measure "cohort gpt wide 1x2" "$(cohort_rate "$work/w" 256)"
measure "torch gpt wide 1x2" "$("$python" "$peers/torch_lm.py" --data-file "$text" --layers 6 --heads 6 --embd 384 \
  --block-size 256 --batch-size 64 --steps "$wide" --warmup-steps 1 --eval-windows 8 --eval-every 100000 | peer_rate)"

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo
printf '%-22s %12s %12s %8s\n' configuration cohort torch ratio
for pair in "gpt 1x2:gpt 1x2" "gpt 2x1:gpt ddp 2x1" "rows 1x2:rows 1x2" "gpt wide 1x2:gpt wide 1x2"; do
  ours=$(echo "${results["cohort ${pair%%:*}"]}" | median); theirs=$(echo "${results["torch ${pair##*:}"]}" | median)
  printf '%-22s %12s %12s %8.2f\n' "${pair%%:*}" "$ours" "$theirs" "$(python3 -c "print($ours/$theirs)")"
done
