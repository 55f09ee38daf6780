#!/usr/bin/env python3
"""The README's PyTorch recipe for `--emit-masks`, run for real (test/torch-masks.test.ts).

For a masks document kprune wrote for one of the bundled fixtures, builds the fixture's own PyTorch
class (fixtures/generate/train_fixtures.py, the code that trained and exported it), and for every
entry: finds `torchModule` with get_submodule, checks it is a Conv2d whose weight has the kernel
shape kprune reported, applies the mask with torch.nn.utils.prune.custom_from_mask exactly as the
README shows, trains a few steps, and checks that every masked position is exactly zero and that
kept positions moved. Prints one JSON line; exits 1 with the reason on any mismatch.

    /usr/bin/python3 test/python/apply_masks.py <fixture name> <masks.json>
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import prune

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "fixtures", "generate"))
import train_fixtures as fx  # noqa: E402

CLASSES = {"resnet-fmnist": fx.ResNet, "vgg-fmnist": fx.VGG, "dwsep-fmnist": fx.DWSep, "misc-fmnist": fx.Misc}


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


def main():
    name, masks_file = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = CLASSES[name]()
    doc = json.load(open(masks_file))
    applied = []
    for entry in doc["layers"]:
        if entry["torchModule"] is None:
            fail(f"{entry['weight']}: no torchModule guessed")
        try:
            conv = model.get_submodule(entry["torchModule"])
        except AttributeError as e:
            fail(f"{entry['weight']}: torchModule {entry['torchModule']!r} is not in the model ({e})")
        if not isinstance(conv, nn.Conv2d):
            fail(f"{entry['torchModule']}: a {type(conv).__name__}, not a Conv2d")
        if list(conv.weight.shape) != entry["kernel"]:
            fail(f"{entry['torchModule']}: weight {list(conv.weight.shape)}, kprune reported {entry['kernel']}")
        # The README's recipe, verbatim.
        mask = torch.tensor(entry["mask3x3"], dtype=conv.weight.dtype).expand_as(conv.weight).clone()
        prune.custom_from_mask(conv, name="weight", mask=mask)
        applied.append((entry, conv, conv.weight.detach().clone()))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(16, 1, 28, 28)
    y = torch.arange(16) % 10
    model.train()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    moved = 0
    for entry, conv, before in applied:
        w = conv.weight.detach()
        m = torch.tensor(entry["mask3x3"], dtype=w.dtype).expand_as(w)
        if torch.any(w[m == 0] != 0):
            fail(f"{entry['torchModule']}: a masked position is not zero after training")
        moved += int(torch.any(w[m == 1] != before[m == 1]))
    print(json.dumps({"model": name, "layers": len(applied), "moved": moved, "modules": sorted({e["torchModule"] for e, _, _ in applied})}))


if __name__ == "__main__":
    main()
