#!/usr/bin/env bash
# The memory of 2 ranks training from a pack (docs/performance.md, "Your own data"): each rank's
# anonymous memory at its peak (RssAnon in /proc/PID/status, polled every 0.1 s), and what the
# shards' mappings hold in it (Rss, and Pss: each shared page counted once over the ranks that
# map it), for a pack larger than any one rank would want to copy.
#
#   bench/pack-memory.sh WORK [--gib 4] [--pack DIR] [--source "FLAGS"]
#
# Writes WORK/random-arrays (x_train.npy of random uint8 images [N, 3, 32, 32] totalling
# --gib GiB, 1,000 test images; needs Debian's python3-numpy) and packs it into WORK/random-pack,
# or takes --pack DIR, or trains on another source (--source "--dataset cifar10 --data-dir D",
# for comparison); then trains the report's CNN on 2 ranks for 200 steps of 64 (--limit
# 12800: the whole pack is mapped and checked, the steps read their samples) and prints the
# figures of each rank.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$1"; shift
gib=4 pack="" source=""
while (($#)); do
  case "$1" in
    --gib) gib="$2"; shift 2 ;;
    --pack) pack="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    *) echo "bench/pack-memory.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
cohort="$here/.build/release/cohort"
[ -x "$cohort" ] || { echo "bench/pack-memory.sh: build the release binary first" >&2; exit 2; }
mkdir -p "$work"
if [ -z "$pack" ] && [ -z "$source" ]; then
  pack="$work/random-pack"
  if [ ! -f "$pack/pack.json" ]; then
    /usr/bin/python3 - "$work/random-arrays" "$gib" <<'EOF'
import os, sys
import numpy as np
out, gib = sys.argv[1], float(sys.argv[2])
os.makedirs(out, exist_ok=True)
n = int(gib * 2**30) // 3072
rng = np.random.default_rng(0)
x = np.lib.format.open_memmap(os.path.join(out, "x_train.npy"), mode="w+", dtype=np.uint8, shape=(n, 3, 32, 32))
for start in range(0, n, 65536):
    stop = min(n, start + 65536)
    x[start:stop] = rng.integers(0, 256, (stop - start, 3, 32, 32), dtype=np.uint8)
x.flush()
np.save(os.path.join(out, "y_train.npy"), rng.integers(0, 10, n))
np.save(os.path.join(out, "x_test.npy"), rng.integers(0, 256, (1000, 3, 32, 32), dtype=np.uint8))
np.save(os.path.join(out, "y_test.npy"), rng.integers(0, 10, 1000))
print(f"{n} training images, {x.nbytes / 2**30:.2f} GiB")
EOF
    "$cohort" data pack "$work/random-arrays" --out "$pack" --normalize 0.5/0.5 | tail -1
  fi
fi
[ -n "$source" ] || { du -sh "$pack"; source="--dataset pack --data-dir $pack"; }
out="$work/memory-run"
rm -rf "$out"
# shellcheck disable=SC2086
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$here/launch/train" -n 2 --model cnn $source --limit 12800 --test-limit 1000 --epochs 1 --batch-size 64 --optimizer sgd --lr 0.01 --quiet \
  --out "$out" &
job=$!
/usr/bin/python3 - "$job" <<'EOF'
import os, sys, time
job = int(sys.argv[1])
def children(pid):
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task") for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
    except OSError:
        return []
def ranks():
    found, todo = [], [job]
    while todo:
        p = todo.pop()
        for c in children(p):
            todo.append(c)
            try:
                if open(f"/proc/{c}/cmdline").read().split("\0")[1:2] == ["train"]:
                    found.append(c)
            except OSError:
                pass
    return found
peak, shards = {}, {}
while os.path.exists(f"/proc/{job}"):
    for pid in ranks():
        try:
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
            anon = int(status["RssAnon"].split()[0])
            peak[pid] = max(peak.get(pid, 0), anon)
            rss = pss = 0
            current = None
            for line in open(f"/proc/{pid}/smaps"):
                parts = line.split()
                if len(parts) >= 6 and "-" in parts[0]:
                    current = parts[-1]
                elif current and current.endswith(".shard") and parts[0] in ("Rss:", "Pss:"):
                    if parts[0] == "Rss:":
                        rss += int(parts[1])
                    else:
                        pss += int(parts[1])
            if rss:
                shards[pid] = (rss, pss)
        except (OSError, KeyError, ValueError):
            pass
    time.sleep(0.1)
for pid in sorted(peak):
    rss, pss = shards.get(pid, (0, 0))
    print(f"rank pid {pid}: peak RssAnon {peak[pid] / 1024:.0f} MB; shards mapped: Rss {rss / 1024:.0f} MB, Pss {pss / 1024:.0f} MB (last reading)")
EOF
wait "$job"
