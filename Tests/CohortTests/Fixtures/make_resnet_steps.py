#!/usr/bin/env python3
"""Writes resnet_steps_initial.safetensors, resnet_steps_final.safetensors and resnet_steps.json:
the reference trainer's ResNet (n = 1) as PyTorch initialises it, the same after 3 steps of SGD
(Nesterov momentum 0.9, weight decay 5e-4, lr 0.1) on a fixed batch of four 3x8x8 inputs in
training mode, and that batch. TorchReferenceTests starts Cohort's ResNet from the first file
and compares its 3 steps with the second (parameters and batch norm's running statistics).

  /tmp/torch-venv/bin/python make_resnet_steps.py [PATH/torch_reference.py]
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
reference = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "..", "shared", "peers",
                                                               "torch_reference.py")
sys.path.insert(0, os.path.dirname(reference))
import torch_reference  # noqa: E402

sys.path.insert(0, here)
from safetensors_writer import write_safetensors  # noqa: E402

torch.manual_seed(2024)


model = torch_reference.ResNet(1, 3)
model.train()
write_safetensors(model.state_dict(), os.path.join(here, "resnet_steps_initial.safetensors"))
x = torch.randn(4, 3, 8, 8)
labels = torch.tensor([3, 7, 0, 7])
settings = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "steps": 3}
opt = torch.optim.SGD(model.parameters(), lr=settings["lr"], momentum=settings["momentum"],
                      nesterov=settings["nesterov"], weight_decay=settings["weight_decay"])
for _ in range(settings["steps"]):
    opt.zero_grad()
    F.cross_entropy(model(x), labels).backward()
    opt.step()
write_safetensors(model.state_dict(), os.path.join(here, "resnet_steps_final.safetensors"))
with open(os.path.join(here, "resnet_steps.json"), "w") as f:
    json.dump({"x": {"shape": list(x.shape), "data": [float(v) for v in x.flatten().numpy()]},
               "labels": labels.tolist(), "n": 1, **settings,
               "generator": f"make_resnet_steps.py, torch {torch.__version__}"}, f)
    f.write("\n")
