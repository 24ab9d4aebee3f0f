#!/usr/bin/env python3
"""Load a Cohort run's model.safetensors into the PyTorch reference model and evaluate it.

  python3 interop/torch_eval.py RUN_DIR [--data-dir DIR] [--reference PATH/torch_reference.py]

Reads RUN_DIR/config.json for the model, dataset and hidden size, builds the
reference's own model class (../shared/peers/torch_reference.py by default),
loads the weights with load_state_dict(strict=True) - names and shapes must match
exactly - and prints the test loss and accuracy as JSON. Needs torch and numpy;
the safetensors file is parsed here, so the safetensors package is not needed.
"""
import argparse, importlib.util, json, os, struct, sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype="<f4").reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-dir", help="dataset directory (default: the run's data_dir)")
    p.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "peers", "torch_reference.py"))
    a = p.parse_args()

    spec = importlib.util.spec_from_file_location("torch_reference", a.reference)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    config = json.load(open(os.path.join(a.run_dir, "config.json")))
    data_dir = a.data_dir or config["data_dir"]
    if config["dataset"] == "cifar10":
        nested = os.path.join(data_dir, "cifar-10-batches-bin")
        x, y = ref.load_cifar(nested if os.path.isdir(nested) else data_dir, False)
    else:
        x, y = ref.load_mnist(data_dir, False)
    if config["model"] == "cnn":
        model = ref.SeedCNN(x.shape[1], x.shape[2])
    else:
        model = ref.SeqNet(config["model"], config["hidden"], x.shape[-1])
    model.load_state_dict(read_safetensors(os.path.join(a.run_dir, "model.safetensors")), strict=True)
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            out = model(x[i:i + 1000])
            loss += F.cross_entropy(out, y[i:i + 1000], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + 1000]).sum().item()
    print(json.dumps({"run": a.run_dir, "model": config["model"], "test_loss": round(loss / len(x), 4),
                      "test_acc": round(correct / len(x), 4)}))


if __name__ == "__main__":
    sys.exit(main())
