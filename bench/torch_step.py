#!/usr/bin/env python3
"""The PyTorch side of `node dist/bench/finetune.js --sections torch`: the same training step kprune
times (bench/finetune.ts, speed section) on the same architectures, in PyTorch on this CPU.

The models are the fixtures' own classes (fixtures/generate/train_fixtures.py), with random
weights (speed does not depend on them). Step = forward in eval mode (BatchNorm frozen, as kprune
trains), cross-entropy on labels, backward of the 3x3 filters only, gradients masked to a cross,
Adam, masks applied again. Forward and step are timed interleaved; prints one JSON line.

    /usr/bin/python3 bench/torch_step.py --model resnet-fmnist --batch 64 --reps 12 --threads 1
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "generate"))
import train_fixtures as fx  # noqa: E402

MODELS = {"resnet-fmnist": fx.ResNet, "vgg-fmnist": fx.VGG, "dwsep-fmnist": fx.DWSep, "misc-fmnist": fx.Misc}
CROSS = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(2)
    torch.set_num_threads(a.threads)
    model = MODELS[a.model]().eval()
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    for q in model.parameters():
        q.requires_grad_(False)
    for w in filters:
        w.requires_grad_(True)
    opt = torch.optim.Adam(filters, lr=1e-4)
    x = torch.rand(a.batch, 1, 28, 28)
    labels = torch.arange(a.batch) % 10

    def forward():
        with torch.no_grad():
            model(x)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        for w in filters:
            w.grad.mul_(CROSS)
        opt.step()
        with torch.no_grad():
            for w in filters:
                w.mul_(CROSS)
        return float(loss)

    forward()
    step()
    fwd, stp, stp_cpu = [], [], []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        forward()
        t1 = time.perf_counter()
        c1 = time.process_time()
        step()
        t2 = time.perf_counter()
        stp_cpu.append((time.process_time() - c1) * 1000)
        fwd.append((t1 - t0) * 1000)
        stp.append((t2 - t1) * 1000)
    print(json.dumps({
        "model": a.model, "batch": a.batch, "reps": a.reps, "threads": a.threads,
        "torch": torch.__version__, "forwardMs": median(fwd), "stepMs": median(stp),
        "stepMinMs": min(stp), "stepCpuMs": median(stp_cpu),
    }))


if __name__ == "__main__":
    main()
