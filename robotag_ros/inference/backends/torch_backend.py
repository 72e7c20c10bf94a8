"""The PyTorch backend: the in-memory model, eager or compiled."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from robotag_ros.inference.backends.interface import BackendUnavailable
from robotag_ros.model.inference_network import INFERENCE_OUTPUT_NAMES, InferenceNetwork


class TorchBackend:
    """PyTorch eager, or on CUDA with half precision and CUDA graphs (via torch.compile's
    ``reduce-overhead`` mode): the fastest PyTorch path on a GPU."""

    name = 'torch'

    def __init__(self, model: nn.Module, device: str = 'cpu', precision: str = 'fp32',
                 compile_mode: Optional[str] = None):
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise BackendUnavailable('device=cuda asked for, but torch sees no CUDA device')
        self.dtype = {'fp32': torch.float32, 'fp16': torch.float16,
                      'bf16': torch.bfloat16}[precision]
        if self.dtype != torch.float32 and self.device.type != 'cuda':
            raise BackendUnavailable(f'precision {precision} is for CUDA; use fp32 on the CPU')
        self.network = InferenceNetwork(model).to(self.device).eval()
        self._forward = self.network
        # CUDA graphs (reduce-overhead) replay into the same output buffers: each call must
        # open a new step and copy its outputs out before the next replay overwrites them.
        self._cuda_graphs = bool(compile_mode) and 'reduce-overhead' in compile_mode
        if compile_mode:
            self._forward = torch.compile(self.network, mode=compile_mode, dynamic=False)

    @torch.inference_mode()
    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, torch.Tensor]:
        image_t = torch.as_tensor(image).to(self.device, non_blocking=True)
        K_t = torch.as_tensor(intrinsics).to(self.device, non_blocking=True)
        if self._cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            outputs = self._forward(image_t, K_t)
        return {name: out.float().clone() if self._cuda_graphs else out.float()
                for name, out in zip(INFERENCE_OUTPUT_NAMES, outputs)}
