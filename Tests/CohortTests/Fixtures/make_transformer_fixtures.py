#!/usr/bin/env python3
"""Writes transformer_fixtures.json: PyTorch's forward outputs and gradients for the layers of
transformers (embedding, positions, LayerNorm, attention, GELU, linear at every position, the
mean over positions), a pre-LayerNorm block, the peers' two transformers, gradient clipping and
three training steps of the peer's GPT, on small fixed inputs; and gpt_steps_initial.safetensors,
the GPT's state_dict before those steps.

  /tmp/torch-venv/bin/python make_transformer_fixtures.py > transformer_fixtures.json

Tensors are {"shape": [...], "data": [...]}, row-major, as in make_torch_fixtures.py.
"""
import contextlib
import io
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Its helpers, for the same tensor format; importing it runs it, so its own output is dropped.
with contextlib.redirect_stdout(io.StringIO()):
    from make_torch_fixtures import t, rand, layer_case  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared", "peers"))
import torch_lm  # noqa: E402  the peer's own GPT
import torch_reference  # noqa: E402  the peer's own row transformer

torch.manual_seed(35)


class Attention(nn.Module):
    """The peers' attention without its LayerNorm: qkv, heads, softmax(q k^T / sqrt(d/h)), proj."""
    def __init__(self, d, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        n, t_, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(n, t_, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(n, t_, d))


class Positions(nn.Module):
    def __init__(self, length, d):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(length, d) * 0.02 + 0.1 * torch.randn(length, d))

    def forward(self, x):
        return x + self.pos[: x.shape[1]]


class Mean(nn.Module):
    def forward(self, x):
        return x.mean(1)


def embedding_case(vocab, d, tokens):
    module = nn.Embedding(vocab, d)
    y = module(tokens)
    dy = rand(*y.shape)
    y.backward(dy)
    return {"x": t(tokens.float()), "y": t(y), "dy": t(dy), "params": {"weight": t(module.weight)},
            "grads": {"weight": t(module.weight.grad)}, "config": {"vocab": vocab, "dim": d}}


def lm_case(model, tokens, targets):
    """Mean cross-entropy over every position of every window, and every parameter's gradient."""
    logits = model(tokens)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    return {"x": t(tokens.float()), "labels": targets.flatten().tolist(), "logits": t(logits), "loss": loss.item(),
            "params": {n: t(p) for n, p in model.named_parameters()},
            "grads": {n: t(p.grad) for n, p in model.named_parameters()}}


def gpt_steps_case(steps=3):
    """The peer's training step (AdamW, decay on matrices only, clipping, warmup) from its own
    initial state, on fixed windows: the initial and final parameters."""
    vocab, block, layers, heads, d = 13, 8, 2, 2, 16
    torch.manual_seed(3)
    model = torch_lm.GPT(vocab, block, layers, heads, d)
    start = {n: t(p) for n, p in model.named_parameters()}
    write_safetensors(model.state_dict(), os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "gpt_steps_initial.safetensors"))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    lr, warmup, weight_decay, betas, clip = 3e-3, 2, 0.1, (0.9, 0.99), 0.5
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)
    batches, norms = [], []
    for step in range(steps):
        x = torch.randint(0, vocab, (4, block))
        y = torch.randint(0, vocab, (4, block))
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item())
        opt.step()
        batches.append({"x": x.flatten().tolist(), "y": y.flatten().tolist()})
    return {"config": {"vocab": vocab, "block": block, "layers": layers, "heads": heads, "embd": d, "lr": lr,
                       "warmup_steps": warmup, "weight_decay": weight_decay, "betas": list(betas), "clip": clip,
                       "batch": 4},
            "initial": start, "final": {n: t(p) for n, p in model.named_parameters()}, "batches": batches,
            "norms": norms}


def clip_case():
    grads = [rand(3, 4) * 2, rand(5), rand(2, 2, 3)]
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, 1.5)
    return {"grads": t(torch.cat([g.flatten() for g in grads])), "max_norm": 1.5, "norm": norm.item(),
            "clipped": t(torch.cat([p.grad.flatten() for p in params]))}


fixtures = {}
fixtures["layernorm_sequence"] = layer_case(nn.LayerNorm(6), 1.5 + 2 * rand(2, 3, 6))
with torch.no_grad():
    ln = nn.LayerNorm(5, eps=1e-3)
    ln.weight.copy_(1 + 0.3 * rand(5)); ln.bias.copy_(0.2 * rand(5))
fixtures["layernorm_vector"] = layer_case(ln, rand(4, 5), {"config": {"eps": 1e-3}})
fixtures["gelu"] = layer_case(nn.GELU(), 3 * rand(2, 3, 7))
fixtures["gelu_tanh"] = layer_case(nn.GELU(approximate="tanh"), 3 * rand(2, 3, 7))
fixtures["linear_positions"] = layer_case(nn.Linear(5, 4), rand(2, 3, 5))
fixtures["linear_positions_nobias"] = layer_case(nn.Linear(5, 6, bias=False), rand(2, 3, 5))
fixtures["attention_causal"] = layer_case(Attention(8, 2, True), rand(2, 5, 8), {"config": {"heads": 2, "causal": True}})
fixtures["attention_full"] = layer_case(Attention(12, 3, False), rand(3, 4, 12), {"config": {"heads": 3, "causal": False}})
fixtures["positions"] = layer_case(Positions(6, 4), rand(2, 5, 4), {"config": {"length": 6}})
fixtures["sequence_mean"] = layer_case(Mean(), rand(2, 5, 3))
fixtures["embedding"] = embedding_case(7, 3, torch.tensor([[1, 4, 4, 0], [6, 1, 2, 4]]))
fixtures["decoder_block"] = layer_case(torch_lm.Block(8, 2), rand(2, 6, 8), {"config": {"heads": 2}})

torch.manual_seed(5)
gpt = torch_lm.GPT(11, 6, 2, 2, 8)
fixtures["gpt"] = lm_case(gpt, torch.randint(0, 11, (3, 6)), torch.randint(0, 11, (3, 6)))
fixtures["gpt"]["config"] = {"vocab": 11, "block": 6, "layers": 2, "heads": 2, "embd": 8}
rows = torch_reference.RowTransformer(rows=7, width=5, d=8, heads=2, layers=2, classes=4)
x = rand(3, 1, 7, 5)
labels = torch.tensor([0, 3, 1])
logits = rows(x)
loss = F.cross_entropy(logits, labels)
loss.backward()
fixtures["row_transformer"] = {"x": t(x), "labels": labels.tolist(), "logits": t(logits), "loss": loss.item(),
                               "config": {"rows": 7, "width": 5, "embd": 8, "heads": 2, "layers": 2, "classes": 4},
                               "params": {n: t(p) for n, p in rows.named_parameters()},
                               "grads": {n: t(p.grad) for n, p in rows.named_parameters()}}
fixtures["clip_grad_norm"] = clip_case()
fixtures["gpt_steps"] = gpt_steps_case()
full = torch_lm.GPT(73, 64, 4, 4, 128)
fixtures["gpt_char_state"] = {"tensors": [[n, list(v.shape)] for n, v in full.state_dict().items()],
                              "parameters": sum(p.numel() for p in full.parameters())}
fixtures["generator"] = f"make_transformer_fixtures.py, torch {torch.__version__}"

json.dump(fixtures, sys.stdout, indent=None)
sys.stdout.write("\n")
