#!/usr/bin/env python3
"""Writes torch_fixtures.json: forward outputs and gradients computed by PyTorch on
small fixed inputs, which the Swift tests compare Cohort's layers, models, loss and
optimizers against.

  python3 -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch
  /tmp/torch-venv/bin/python make_torch_fixtures.py > torch_fixtures.json

Every case stores its inputs, parameters and upstream gradient, so the Swift side
needs no random generator of PyTorch's. Tensors are {"shape": [...], "data": [...]}
with data flattened in row-major (PyTorch's contiguous) order.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)


def t(x):
    # Shortest decimal that reads back as the same float32 (keeps the file small).
    x = x.detach().contiguous()
    return {"shape": list(x.shape),
            "data": [float(np.format_float_scientific(v, unique=True)) for v in x.flatten().numpy()]}


def rand(*shape):
    return torch.randn(*shape)


def layer_case(module, x, extra=None):
    """Forward x through module, backward a random upstream gradient."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    dy = rand(*y.shape)
    y.backward(dy)
    case = {"x": t(x), "y": t(y), "dy": t(dy), "dx": t(x.grad),
            "params": {n: t(p) for n, p in module.named_parameters()},
            "grads": {n: t(p.grad) for n, p in module.named_parameters()}}
    case.update(extra or {})
    return case


class LastHidden(nn.Module):
    """nn.RNN/LSTM/GRU(batch_first) -> out[:, -1], as the reference's SeqNet."""
    def __init__(self, cell, inp, hidden):
        super().__init__()
        self.rnn = cell(inp, hidden, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


class SeedCNN(nn.Module):
    """The reference's CNN; filter counts are parameters here only to keep the fixture small."""
    def __init__(self, in_ch, size, classes=10, filters=(32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, filters[0], 5, padding=2)
        self.conv2 = nn.Conv2d(filters[0], filters[1], 5, padding=2)
        self.fc = nn.Linear(filters[1] * (size // 4) * (size // 4), classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class SeqNet(nn.Module):
    def __init__(self, cell, hidden, inp, classes=10):
        super().__init__()
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](inp, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x.squeeze(1))
        return self.fc(out[:, -1])


def model_case(model, x, labels):
    """Mean cross-entropy over the batch and the gradient of every parameter."""
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return {"x": t(x), "labels": labels.tolist(), "logits": t(logits), "loss": loss.item(),
            "params": {n: t(p) for n, p in model.named_parameters()},
            "grads": {n: t(p.grad) for n, p in model.named_parameters()}}


def optimizer_case(name, make, steps=4, n=7):
    p = torch.nn.Parameter(rand(n))
    start = p.detach().clone()
    opt = make([p])
    grads, after = [], []
    for _ in range(steps):
        g = rand(n)
        p.grad = g.clone()
        opt.step()
        grads.append(t(g))
        after.append(t(p))
    return {"name": name, "start": t(start), "grads": grads, "after": after}


fixtures = {
    "conv2d_k3_s2_p1": layer_case(nn.Conv2d(3, 4, 3, stride=2, padding=1), rand(2, 3, 7, 7),
                                  {"config": {"in": 3, "out": 4, "kernel": 3, "stride": 2, "padding": 1}}),
    "conv2d_k5_s1_p2": layer_case(nn.Conv2d(2, 3, 5, stride=1, padding=2), rand(2, 2, 6, 6),
                                  {"config": {"in": 2, "out": 3, "kernel": 5, "stride": 1, "padding": 2}}),
    "maxpool_k2": layer_case(nn.MaxPool2d(2), rand(2, 3, 6, 6), {"config": {"kernel": 2, "stride": 2, "padding": 0}}),
    "maxpool_k3_s2_p1": layer_case(nn.MaxPool2d(3, stride=2, padding=1), rand(2, 2, 7, 7),
                                   {"config": {"kernel": 3, "stride": 2, "padding": 1}}),
    "linear": layer_case(nn.Linear(5, 4), rand(3, 5)),
    "rnn": layer_case(LastHidden(nn.RNN, 5, 6), rand(3, 4, 5)),
    "lstm": layer_case(LastHidden(nn.LSTM, 5, 6), rand(3, 4, 5)),
    "gru": layer_case(LastHidden(nn.GRU, 5, 6), rand(3, 4, 5)),
}

logits = rand(4, 10).requires_grad_(True)
labels = torch.tensor([3, 0, 9, 3])
loss = F.cross_entropy(logits, labels)
loss.backward()
fixtures["cross_entropy"] = {"logits": t(logits), "labels": labels.tolist(), "loss": loss.item(),
                             "dlogits": t(logits.grad)}

fixtures["cnn_model"] = model_case(SeedCNN(1, 8, filters=(4, 6)), rand(3, 1, 8, 8), torch.tensor([1, 7, 4]))
fixtures["gru_model"] = model_case(SeqNet("gru", 6, 5), rand(3, 1, 4, 5), torch.tensor([2, 2, 8]))

fixtures["optimizers"] = [
    optimizer_case("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    optimizer_case("sgd_momentum_wd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    optimizer_case("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    optimizer_case("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
    optimizer_case("adam_wd", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    optimizer_case("adamw", lambda p: torch.optim.AdamW(p, lr=0.01)),
    optimizer_case("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1)),
    optimizer_case("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01)),
    optimizer_case("rmsprop_momentum", lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9)),
]

logits = rand(5, 10).requires_grad_(True)
labels = torch.tensor([3, 0, 9, 3, 7])
loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
loss.backward()
fixtures["cross_entropy_smoothed"] = {"logits": t(logits), "labels": labels.tolist(), "label_smoothing": 0.1,
                                      "loss": loss.item(), "dlogits": t(logits.grad)}


def batchnorm_case(module, x, x_eval):
    """A training forward and backward (batch statistics) with a non-trivial affine part, the
    running statistics it leaves, and an evaluation forward of x_eval with them."""
    with torch.no_grad():
        module.weight.copy_(1 + 0.5 * rand(*module.weight.shape))
        module.bias.copy_(0.5 * rand(*module.bias.shape))
    module.train()
    case = layer_case(module, x)
    case["buffers"] = {n: t(b.float()) for n, b in module.named_buffers()}
    module.eval()
    with torch.no_grad():
        case["eval"] = {"x": t(x_eval), "y": t(module(x_eval))}
    return case


class BasicBlock(nn.Module):
    """The reference's ResNet block: conv3x3-BN-ReLU-conv3x3-BN, plus the input (a 1x1 conv + BN
    where the shape changes), then ReLU."""
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


fixtures["conv2d_k3_s2_p1_nobias"] = layer_case(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), rand(2, 3, 7, 7),
                                                {"config": {"in": 3, "out": 4, "kernel": 3, "stride": 2, "padding": 1}})
fixtures["batchnorm2d"] = batchnorm_case(nn.BatchNorm2d(3), 2 + 3 * rand(4, 3, 5, 5), rand(2, 3, 5, 5))
fixtures["batchnorm1d"] = batchnorm_case(nn.BatchNorm1d(5), rand(6, 5), rand(3, 5))
fixtures["batchnorm1d_length"] = batchnorm_case(nn.BatchNorm1d(3), rand(4, 3, 7), rand(2, 3, 7))
fixtures["avgpool_k2"] = layer_case(nn.AvgPool2d(2), rand(2, 3, 6, 6), {"config": {"kernel": 2, "stride": 2, "padding": 0}})
fixtures["avgpool_k3_s2_p1"] = layer_case(nn.AvgPool2d(3, stride=2, padding=1), rand(2, 2, 7, 7),
                                          {"config": {"kernel": 3, "stride": 2, "padding": 1}})
fixtures["global_avgpool"] = layer_case(nn.AdaptiveAvgPool2d(1), rand(2, 3, 5, 4))
fixtures["basic_block_projection"] = layer_case(BasicBlock(3, 4, 2), rand(2, 3, 8, 8),
                                                {"config": {"in": 3, "out": 4, "stride": 2}})
fixtures["basic_block_identity"] = layer_case(BasicBlock(4, 4, 1), rand(2, 4, 6, 6),
                                              {"config": {"in": 4, "out": 4, "stride": 1}})


def state_shapes(module):
    """Every tensor of module.state_dict() (parameters and buffers), in order: name, shape, dtype."""
    return [[n, list(v.shape), str(v.dtype).replace("torch.", "")] for n, v in module.state_dict().items()]


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared", "peers"))
import torch_reference  # noqa: E402  the peer's own ResNet

resnet20 = torch_reference.ResNet(3, 3)
fixtures["resnet20_state"] = {"tensors": state_shapes(resnet20),
                              "parameters": sum(p.numel() for p in resnet20.parameters())}
fixtures["generator"] = f"make_torch_fixtures.py, torch {torch.__version__}"

json.dump(fixtures, sys.stdout, indent=None)
sys.stdout.write("\n")
