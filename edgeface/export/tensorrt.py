"""TensorRT engines from ONNX (TensorRT 11 API: strongly typed networks, explicit Q/DQ quantization).

TensorRT 11 removed the FP16/INT8 builder flags and IInt8Calibrator: precision now comes from the ONNX graph.
fp16 engines are built from the float16 ONNX model (edgeface.export.onnx.to_fp16, float I/O kept);
int8 engines from the ONNX Runtime QDQ model, whose scales come from the calibration manifest.
"""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.utils import atomic_path


def build_engine(onnx_path: Path, engine_path: Path, size: int, batch=(1, 16, 64), timing_cache: Path | None = None,
                 workspace_mb: int = 1024, nchw: bool = False) -> None:
    """Parses the ONNX model and writes a serialized engine with a min/opt/max batch profile."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # strongly typed, explicit batch: the only mode in TensorRT 11
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgefaceError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    shape = (lambda n: (n, 3, size, size)) if nchw else (lambda n: (n, size, size, 3))
    profile.set_shape(name, shape(batch[0]), shape(batch[1]), shape(batch[2]))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgefaceError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if timing_cache:
        with atomic_path(timing_cache) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
