#!/usr/bin/env python3
"""The PyTorch side of `node dist/bench/train-deep.js`: a ResNet-18 (torchvision's layout: a 7x7
stride-2 stem, max pooling, four stages of two basic blocks, 16 3x3 convolutions in the blocks, 1x1
projections, global pooling, a linear head) on 3-channel images of a given size, with seeded random
weights (speed does not depend on them).

    --export FILE   write the model as ONNX (eval mode: BatchNormalization folded by the exporter)
    otherwise       time the training step kprune times: forward in eval mode (BatchNorm frozen),
                    cross-entropy on labels, backward of the 3x3 filters only, gradients masked to a
                    cross, Adam, masks applied again; prints one JSON line.

    /usr/bin/python3 bench/torch_deep.py --size 112 --batch 16 --reps 4 --threads 1
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CROSS = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet18(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def model_with_stats():
    torch.manual_seed(3)
    m = ResNet18()
    # Non-trivial BatchNorm statistics, so that the folded weights are not the raw ones.
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = model_with_stats()
    if a.export:
        torch.onnx.export(model, torch.rand(1, 3, a.size, a.size), a.export, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
        return
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    for q in model.parameters():
        q.requires_grad_(False)
    for w in filters:
        w.requires_grad_(True)
    opt = torch.optim.Adam(filters, lr=1e-4)
    torch.manual_seed(2)
    x = torch.rand(a.batch, 3, a.size, a.size)
    labels = torch.arange(a.batch) % 10

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

    step()
    wall, cpu = [], []
    for _ in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({"size": a.size, "batch": a.batch, "reps": a.reps, "threads": a.threads, "torch": torch.__version__,
                      "stepMs": median(wall), "stepCpuMs": median(cpu), "filters": len(filters)}))


if __name__ == "__main__":
    main()
