#!/usr/bin/env python3
"""Where PyTorch's training step goes (issue #14): the step of bench/torch_step.py (eval-mode
forward, cross-entropy, backward of the 3x3 filters, masked Adam) under torch.profiler, self CPU
time summed per operator, per step. Compare with `node dist/bench/profile-step.js` (onnxruntime).

    /usr/bin/python3 bench/torch_profile.py --model vgg-fmnist --threads 1 [--reps 20] [--top 25]
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_step as ts  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=sorted(ts.MODELS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    torch.manual_seed(2)
    torch.set_num_threads(a.threads)
    model = ts.MODELS[a.model]().eval()
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    for q in model.parameters():
        q.requires_grad_(False)
    for w in filters:
        w.requires_grad_(True)
    opt = torch.optim.Adam(filters, lr=1e-4)
    x = torch.rand(a.batch, 1, 28, 28)
    labels = torch.arange(a.batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        for w in filters:
            w.grad.mul_(ts.CROSS)
        opt.step()
        with torch.no_grad():
            for w in filters:
                w.mul_(ts.CROSS)

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.reps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{a.model}, batch {a.batch}, {a.threads} threads, torch {torch.__version__}: summed self CPU {total / a.reps / 1000:.1f} ms a step")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: a.top]:
        print(f"  {e.key[:44]:44s} {e.self_cpu_time_total / a.reps / 1000:7.2f} ms {100 * e.self_cpu_time_total / total:5.1f}%  x{e.count // a.reps}")


if __name__ == "__main__":
    main()
