"""Inputs an exported graph must be told, and refuses when they are not what the model was trained with.

A sound model's graph reads raw samples: its STFT and mel filter bank assume the model's sample rate, so a clip at
another rate would be read as a different sound and answered confidently and wrongly. The graph therefore takes the
clip's rate as a second input and fails inside onnxruntime unless it is the model's. The check is plain ONNX (opset
13 ops) written after torch traced the rest: a rate is a number, not a tensor torch's tracer follows into a shape.
"""

from __future__ import annotations

import numpy as np


def check_name(name: str, value: int) -> str:
    """The failing node's name, which onnxruntime's error message quotes: it says what the graph expects."""
    return f"{name}_must_be_{value}"


def require_value(proto, name: str, value: int, guarded: str) -> None:
    """Add the int64 input ``name`` (shape [1]) to ``proto``'s graph, and make the graph input
    ``guarded`` (float32) pass through a node that fails unless ``name`` equals ``value``.

    How it fails: a one-element tensor is reshaped to the shape ``[1]`` when the value matches and ``[2]`` when it
    does not, which onnxruntime refuses ("cannot be reshaped to the requested shape"), naming the node
    ``check_name(name, value)``. The result (1.0) multiplies ``guarded``, so every output depends on the check and no
    optimiser can drop it; multiplying by 1.0 changes no value.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    failing = check_name(name, value)
    const = {"expected": np.array([value], np.int64),
             "pass": np.array([1], np.int64), "fail": np.array([2], np.int64), "one": np.array([1.0], np.float32)}
    graph.initializer.extend(numpy_helper.from_array(v, f"{failing}/{k}") for k, v in const.items())
    checked = f"{guarded}_at_{value}"
    nodes = [
        helper.make_node("Equal", [name, f"{failing}/expected"], [f"{failing}/equal"],
                         name=f"{failing}/equal"),
        helper.make_node("Where", [f"{failing}/equal", f"{failing}/pass", f"{failing}/fail"], [f"{failing}/shape"],
                         name=f"{failing}/shape"),
        # Not [0] for a failure: Reshape reads 0 as "keep this dimension" and would pass.
        helper.make_node("Reshape", [f"{failing}/one", f"{failing}/shape"], [f"{failing}/ok"], name=failing),
        helper.make_node("Mul", [guarded, f"{failing}/ok"], [checked], name=f"{failing}/apply"),
    ]
    for node in graph.node:
        if any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute):
            raise RuntimeError(f"cannot guard {guarded!r}: the graph has subgraphs (node {node.name!r})")
        for i, source in enumerate(node.input):
            if source == guarded:
                node.input[i] = checked
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    # Shape [1], as ONNX's own scalar-like inputs; onnxruntime refuses any other shape before the graph runs.
    graph.input.append(helper.make_tensor_value_info(name, TensorProto.INT64, [1]))
