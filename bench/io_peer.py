"""The Python peer for bench/io.ts: what a user does today without kprune to give a model's 3x3
convolutions the cross shape. onnx.load (weights inline), zero the four corners of every Conv's
3x3 kernel initializer with numpy, onnx.save.

    python3 bench/io_peer.py <in.onnx> <out.onnx>
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    graph = model.graph
    weights = {node.input[1] for node in graph.node if node.op_type == "Conv" and len(node.input) > 1}
    mask = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.float32)
    for i, init in enumerate(graph.initializer):
        if init.name not in weights or len(init.dims) != 4 or tuple(init.dims[2:]) != (3, 3):
            continue
        w = numpy_helper.to_array(init)
        graph.initializer[i].CopyFrom(numpy_helper.from_array((w * mask).astype(w.dtype), init.name))
    onnx.save(model, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
