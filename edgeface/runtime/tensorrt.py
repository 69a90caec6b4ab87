"""The TensorRT runtime: whether a CUDA device is there, and a runner for serialized engines (TensorRT 11 API)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.runtime.runners import Runner


def cuda_available() -> tuple[bool, str]:
    """(True, device name) when TensorRT is importable and a CUDA device answers; else (False, why not)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "the tensorrt package is not installed (pip install -e '.[trt]')"
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return False, "cuda-python is not installed (pip install -e '.[trt]')"
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        return False, "no CUDA device found"
    err, props = cudart.cudaGetDeviceProperties(0)
    return True, props.name.decode(errors="replace").strip("\x00")


def require_gpu() -> None:
    ok, why = cuda_available()
    if not ok:
        raise EdgefaceError(f"TensorRT export needs an NVIDIA GPU with CUDA: {why}")


class TensorRTRunner(Runner):
    """Runs a serialized engine on the GPU: float NHWC batch in, float head outputs out."""

    format = "trt"
    path_only = True

    def __init__(self, path):
        require_gpu()
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self.trt, self.cudart = trt, cudart
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise EdgefaceError(f"{path}: not a TensorRT engine for this TensorRT version and GPU")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.outputs = [n for n in names if n != self.input]
        self.channels_first = self.engine.get_tensor_shape(self.input)[1] == 3
        self.stream = self._check(cudart.cudaStreamCreate())
        self._buffers = {}  # tensor name -> (device pointer, bytes allocated)

    def _check(self, result):
        err, *value = result if isinstance(result, tuple) else (result,)
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"CUDA error {err}")
        return value[0] if value else None

    def _device(self, name: str, nbytes: int) -> int:
        """The tensor's device buffer, allocated once per engine and grown only when a larger batch arrives, so a
        timed run measures inference, not cudaMalloc/cudaFree (issue 31)."""
        pointer, capacity = self._buffers.get(name, (None, 0))
        if nbytes > capacity:
            if pointer is not None:
                self._check(self.cudart.cudaFree(pointer))
            pointer = self._check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (pointer, nbytes)
            self.context.set_tensor_address(name, pointer)
        return pointer

    def run(self, images):
        cudart = self.cudart
        x = np.ascontiguousarray(images.transpose(0, 3, 1, 2) if self.channels_first else images, np.float32)
        self.context.set_input_shape(self.input, x.shape)
        self._check(cudart.cudaMemcpyAsync(self._device(self.input, x.nbytes), x.ctypes.data, x.nbytes,
                                           cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
        host = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            host[name] = np.empty(shape, self.trt.nptype(self.engine.get_tensor_dtype(name)))
            self._device(name, host[name].nbytes)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for name in self.outputs:
            self._check(cudart.cudaMemcpyAsync(host[name].ctypes.data, self._buffers[name][0], host[name].nbytes,
                                               cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        self._check(cudart.cudaStreamSynchronize(self.stream))
        return {k: v.astype(np.float32) for k, v in host.items()}

    def close(self) -> None:
        """Frees the device buffers and the stream (also when the runner is garbage-collected)."""
        for pointer, _ in getattr(self, "_buffers", {}).values():
            self.cudart.cudaFree(pointer)
        self._buffers = {}
        if getattr(self, "stream", None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: CUDA may already be gone
            pass
