#!/usr/bin/env python3
"""Load a Cohort language model (a run of --dataset text) into the peer's GPT and evaluate it.

  python3 interop/torch_lm_eval.py RUN_DIR [--data-file FILE] [--peer PATH/torch_lm.py]

Reads RUN_DIR/config.json for the text, the context and the model's sizes, builds the peer's
own GPT (../shared/peers/torch_lm.py by default), loads RUN_DIR/model.safetensors with
load_state_dict(strict=True) - every name and shape must match - and prints, as JSON, the
validation loss the peer computes on its fixed windows beside the one Cohort recorded last
(evaluations.jsonl). Needs torch and numpy.
"""
import argparse, importlib.util, json, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_eval import read_safetensors  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-file", help="the text (default: the run's data_file)")
    p.add_argument("--peer", default=os.path.join(here, "..", "..", "shared", "peers", "torch_lm.py"))
    a = p.parse_args()
    with open(os.path.join(a.run_dir, "config.json")) as f:
        config = json.load(f)
    config = config.get("config", config)
    spec = importlib.util.spec_from_file_location("torch_lm", a.peer)
    lm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lm)

    raw = np.fromfile(a.data_file or config["data_file"], dtype=np.uint8)
    vocab = np.unique(raw)
    lookup = np.zeros(256, dtype=np.int64)
    lookup[vocab] = np.arange(len(vocab))
    tokens = torch.from_numpy(lookup[raw])
    val = tokens[int(len(tokens) * 0.9):]
    T, windows = config["block_size"], config["eval_windows"]
    starts = torch.linspace(0, len(val) - T - 1, windows).long()
    vx = torch.stack([val[s:s + T] for s in starts]); vy = torch.stack([val[s + 1:s + T + 1] for s in starts])

    sizes = {"layers": 4, "heads": 4, "embd": 128}
    sizes.update(config.get("model_param") or {})
    model = lm.GPT(len(vocab), T, sizes["layers"], sizes["heads"], sizes["embd"])
    model.load_state_dict(read_safetensors(os.path.join(a.run_dir, "model.safetensors")), strict=True)
    model.eval()
    with torch.no_grad():
        loss = sum(F.cross_entropy(model(vx[i:i + 64]).flatten(0, 1), vy[i:i + 64].flatten(), reduction="sum").item()
                   for i in range(0, len(vx), 64)) / vy.numel()
    with open(os.path.join(a.run_dir, "evaluations.jsonl")) as f:
        cohort = json.loads(f.read().strip().split("\n")[-1])["test_loss"]
    print(json.dumps({"strict_load": True, "parameters": sum(p.numel() for p in model.parameters()),
                      "torch_val_loss": round(loss, 6), "cohort_val_loss": round(cohort, 6),
                      "difference": round(loss - cohort, 8)}))


if __name__ == "__main__":
    main()
