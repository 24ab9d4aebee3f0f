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
        dtype = {"F32": "<f4", "I64": "<i8"}[entry["dtype"]]  # I64: batch norm's num_batches_tracked
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtype).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


def run_arguments(description):
    """The command line shared by the interop scripts: RUN_DIR, --data-dir, --reference."""
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-dir", help="dataset directory (default: the run's data_dir)")
    p.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "peers", "torch_reference.py"))
    return p.parse_args()


class Run:
    """A Cohort run directory seen from PyTorch: its config, the reference module, its data."""

    def __init__(self, a):
        spec = importlib.util.spec_from_file_location("torch_reference", a.reference)
        self.ref = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.ref)
        self.dir = a.run_dir
        self.config = json.load(open(os.path.join(a.run_dir, "config.json")))
        self.data_dir = a.data_dir or self.config.get("data_dir")

    def model_name(self):
        """The `name` of the run's model file (model.toml), or the built-in model's name."""
        path = os.path.join(self.dir, "model.toml")
        if os.path.exists(path):
            for line in open(path):
                if line.startswith("name"):
                    return line.split("=", 1)[1].split("#")[0].strip().strip('"')
        return self.config["model"]

    def split(self, train):
        """(x, y) of the training or test split, as the reference loads them."""
        if self.config["dataset"] == "cifar10":
            nested = os.path.join(self.data_dir, "cifar-10-batches-bin")
            return self.ref.load_cifar(nested if os.path.isdir(nested) else self.data_dir, train)
        if self.config["dataset"] in ("mnist", "fashion-mnist"):
            return self.ref.load_mnist(self.data_dir, train)
        sys.exit(f"the PyTorch side reads real datasets, not {self.config['dataset']}")

    def model(self, x, weights):
        """The reference's model for inputs like x, with the run's `weights` file loaded strictly."""
        c = self.config
        if c["model"] == "cnn":
            model = self.ref.SeedCNN(x.shape[1], x.shape[2])
        elif c["model"] in ("rnn", "lstm", "gru"):
            model = self.ref.SeqNet(c["model"], c["hidden"], x.shape[-1])
        elif self.model_name() == "resnet20":
            # ResNet-(6n+2) of the reference; Cohort's file names its blocks per stage n.
            model = self.ref.ResNet((c.get("model_param") or {}).get("n", 3), x.shape[1])
        else:
            sys.exit(f"the reference has no model like {c['model']}")
        model.load_state_dict(read_safetensors(os.path.join(self.dir, weights)), strict=True)
        return model


def main():
    a = run_arguments(__doc__)
    run = Run(a)
    config = run.config
    x, y = run.split(train=False)
    model = run.model(x, "model.safetensors")
    model.eval()
    # --tta flip: the class probabilities averaged with those of the mirrored image, as Cohort
    # evaluates; the loss is the cross-entropy of the averaged probabilities.
    flip = config.get("tta") == "flip"
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            batch, labels = x[i:i + 1000], y[i:i + 1000]
            probabilities = F.softmax(model(batch), 1)
            if flip:
                probabilities = (probabilities + F.softmax(model(batch.flip(3)), 1)) / 2
            loss += F.nll_loss(probabilities.log(), labels, reduction="sum").item()
            correct += (probabilities.argmax(1) == labels).sum().item()
    print(json.dumps({"run": a.run_dir, "model": config["model"], "tta": "flip" if flip else "none",
                      "test_loss": round(loss / len(x), 4), "test_acc": round(correct / len(x), 4)}))


if __name__ == "__main__":
    sys.exit(main())
