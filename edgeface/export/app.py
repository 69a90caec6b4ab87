"""App-ready artifacts (`--io app`): what an app feeds directly and reads by name, with no arithmetic of its own.

    input    raw 8-bit RGB pixels, uint8 [1, H, W, 3]: the app copies bytes, computes nothing, rounds nothing
    outputs  float32 (dequantized inside the graph), named exactly as the card names them ("gender", "age"),
             listed in the card's order as graph outputs and signature outputs (TFLite) or graph outputs (ONNX)
    batch    fixed at 1 (LiteRT.js, MediaPipe and Android's model binding refuse a dynamic batch)

TFLite (int8 inside): the int8 file's input tensor keeps its scale s and zero point z; in front of it a uint8
tensor with the same scale and zero point z + 128 (the converter's own uint8 mapping) goes through DEQUANTIZE
(to float (pixel - z - 128) * s) and QUANTIZE (back to int8: round of an integer, so exactly pixel - 128 + z in
every runtime). Both ops run inside XNNPACK; a single uint8->int8 QUANTIZE computes the same integers but runs in
LiteRT's reference kernel, 0.08 ms per face slower here. The network sees (pixel - z - 128) * s: for
the MobileNet normalization (mean 127.5, std 127.5, s = 1/127.5; z = 0 or -1) half a pixel level from
(pixel - 127.5) / 127.5
- the same size as the rounding an app had to do before, now fixed, and measured (BENCHMARKS.md, apps). Files
whose input scale is not 1/std, whose zero point puts the mean more than half a level off, or whose mean is not
one value for every channel, cannot be fed raw pixels this way, and are refused with the reason.

ONNX (float inside): Cast, Sub and Div nodes in front do the card's normalization exactly, in float32.
"""
from __future__ import annotations

import numpy as np

from edgeface.card import raw_pixel_mapping
from edgeface.errors import EdgefaceError
from edgeface.runtime.formats import IO_CHOICES
from edgeface.runtime.runners import task_key

APP_IO = IO_CHOICES[-1]
APP_FORMATS = ("tflite", "onnx")  # the formats an app embeds; TensorRT engines and SavedModels have no app form


def _find_code(model, schema, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _new_tensor(model, graph, schema, name: str, kind: int, shape, quant=None) -> int:
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.shape = name, kind, list(shape)
    tensor.buffer = len(model.buffers) - 1
    if quant is not None:
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [float(quant[0])], [int(quant[1])]
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _op(schema, code: int, inputs: list, outputs: list):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, list(inputs), list(outputs)
    return op


def app_ready_tflite(flatbuffer: bytes, mean, std, output_order: list, input_name: str = "image") -> bytes:
    """An int8-I/O TFLite file (one subgraph, one signature) rewritten to the app form described above."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    if len(model.subgraphs) != 1 or len(model.signatureDefs or []) != 1:
        raise EdgefaceError("--io app: expected a TFLite file with one subgraph and one signature")
    graph, signature = model.subgraphs[0], model.signatureDefs[0]
    (old_in,) = graph.inputs
    source = graph.tensors[old_in]
    if source.type != schema.TensorType.INT8:
        raise EdgefaceError("--io app rewrites a full-integer int8 file (export the int8 precision)")
    scale, zero = float(source.quantization.scale[0]), int(source.quantization.zeroPoint[0])
    pixel_zero = raw_pixel_mapping(scale, zero, mean, std)
    by_key = {(o.name.decode() if isinstance(o.name, bytes) else o.name): o.tensorIndex for o in signature.outputs}
    if sorted(by_key) != sorted(output_order):
        raise EdgefaceError(f"--io app: the file's outputs {sorted(by_key)} are not the card's {output_order}")
    for tensor in graph.tensors:  # batch 1 everywhere: no dynamic dimension left
        if tensor.shapeSignature is not None and len(tensor.shapeSignature) and tensor.shapeSignature[0] == -1:
            tensor.shapeSignature = None
            if tensor.shape is not None and len(tensor.shape):
                tensor.shape = [1, *[int(d) for d in tensor.shape[1:]]]
    shape = [1, *[int(d) for d in source.shape[1:]]]
    source.name = f"{input_name}_int8".encode()
    new_in = _new_tensor(model, graph, schema, input_name, schema.TensorType.UINT8, shape, (scale, pixel_zero))
    quantize = _find_code(model, schema, schema.BuiltinOperator.QUANTIZE)
    dequantize = _find_code(model, schema, schema.BuiltinOperator.DEQUANTIZE)
    pixels_float = _new_tensor(model, graph, schema, f"{input_name}_float", schema.TensorType.FLOAT32, shape)
    graph.operators[:0] = [_op(schema, dequantize, [new_in], [pixels_float]),
                           _op(schema, quantize, [pixels_float], [old_in])]
    outputs = []
    for name in output_order:
        inner = graph.tensors[by_key[name]]
        inner.name = f"{name}_int8".encode()
        out = _new_tensor(model, graph, schema, name, schema.TensorType.FLOAT32, [1, *[int(d) for d in inner.shape[1:]]])
        graph.operators.append(_op(schema, dequantize, [by_key[name]], [out]))
        outputs.append(out)
    graph.inputs, graph.outputs = [new_in], outputs
    signature.inputs[0].name, signature.inputs[0].tensorIndex = input_name, new_in
    maps = []
    for name, index in zip(output_order, outputs):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        maps.append(entry)
    signature.outputs = maps
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def app_ready_onnx(model, mean, std, output_order: list, input_name: str = "image", channels_first: bool = False):
    """An fp32 ONNX model (float NHWC/NCHW input, already normalized) with uint8 raw-pixel input, the card's
    normalization in the graph, batch 1 and outputs named and ordered as the card's."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    (inp,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    dims = inp.type.tensor_type.shape.dim
    shape = [1] + [d.dim_value for d in dims[1:]]
    inner = f"{input_name}_normalized"
    for node in graph.node:
        node.input[:] = [inner if name == inp.name else name for name in node.input]
    axes = (1, 3, 1, 1) if channels_first else (1, 1, 1, 3)
    graph.initializer.extend([numpy_helper.from_array(np.asarray(mean, np.float32).reshape(axes), "pixel_mean"),
                              numpy_helper.from_array(np.asarray(std, np.float32).reshape(axes), "pixel_std")])
    prologue = [helper.make_node("Cast", [input_name], ["pixels_f32"], to=TensorProto.FLOAT),
                helper.make_node("Sub", ["pixels_f32", "pixel_mean"], ["pixels_centred"]),
                helper.make_node("Div", ["pixels_centred", "pixel_std"], [inner])]
    nodes = prologue + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.remove(inp)
    graph.input.insert(0, helper.make_tensor_value_info(input_name, TensorProto.UINT8, shape))
    by_task = {task_key(out.name): out for out in graph.output}
    if sorted(by_task) != sorted(output_order):
        raise EdgefaceError(f"--io app: the ONNX outputs {sorted(by_task)} are not the card's {output_order}")
    renamed = []
    for name in output_order:
        old = by_task[name]
        for node in graph.node:
            node.output[:] = [name if o == old.name else o for o in node.output]
        units = old.type.tensor_type.shape.dim[-1].dim_value
        renamed.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, units]))
    del graph.output[:]
    graph.output.extend(renamed)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def app_tflite(flatbuffer: bytes, normalization, size: int, outputs: list[dict], name: str) -> bytes:
    """An int8-I/O TFLite file in the app form, with its TFLite Support metadata: the graph outputs are ordered as
    `outputs` (the card's list), so the card, the graph and the metadata can only agree."""
    order = [o["name"] for o in outputs]
    flatbuffer = app_ready_tflite(flatbuffer, normalization.mean, normalization.std, order)
    return with_app_metadata(flatbuffer, size, normalization.channel_order, outputs, name)


def with_app_metadata(flatbuffer: bytes, size: int, color_order: str, outputs: list[dict], name: str) -> bytes:
    """TFLite Support metadata for an app-form file (Android Studio's model binding, MediaPipe and the TFLite
    Support library read it): the raw-pixel image input (uint8, no NormalizationOptions: the normalization is in
    the graph) and each card output with its meaning, in graph order."""
    from edgeface.export.tflite_metadata import TensorInfo, metadata_buffer, with_metadata
    from edgeface.version import __version__

    inputs = [TensorInfo("image", f"{color_order} face crop, {size}x{size}, raw 0-255 pixel bytes (the model card's "
                         "crop contract and resize); normalization happens inside the model",
                         (color_order if color_order == "RGB" else "RGB", size, size), None, ([0.0] * 3, [255.0] * 3))]
    described = []
    for out in outputs:
        stats = ([0.0], [1.0]) if out["decoding"]["rule"] == "probability" else None
        described.append(TensorInfo(out["name"], f"{out['meaning']}; {out['decode']}", None, None, stats))
    meta = metadata_buffer(name, "edgeface face-attribute model (gender, age); the JSON model card embedded as "
                           "edgeface_model_card says everything an app needs", __version__, "edgeface",
                           "Apache-2.0 (code); model trained on research data, see the card's training section",
                           inputs, described)
    return with_metadata(flatbuffer, meta)
