"""Where a training run executes: the device, bf16 autocast on CUDA, torch.compile, and the
DistributedDataParallel process group under ``torchrun`` (gloo on CPU, nccl on CUDA).

torch.compile runs on either device; on CPU, Inductor writes C++ kernels, which need a C++
compiler (g++), and compiles each shape a run takes once (per process: its on-disk cache
serves later runs of the same shape)."""

from __future__ import annotations

import contextlib
import gc
import os
import weakref

import torch
import torch.distributed as dist
from torch import nn

from laws.errors import InputError


class Devices:
    """Where the run executes: device, autocast, compile and the DDP process group."""

    def __init__(self, device: str, compile: bool) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if device not in ("cpu", "cuda"):
            raise InputError(f"--device {device!r}: use cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available")
        self.compile = compile
        self.device = torch.device(device)
        if device == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        self.owns_group = self.world > 1 and not dist.is_initialized()
        self._ddp: weakref.ref[nn.Module] | None = None  # the last DDP wrapper made
        if self.owns_group:
            dist.init_process_group("nccl" if device == "cuda" else "gloo")

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
            self._ddp = weakref.ref(model)
        return torch.compile(model) if self.compile else model

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:
        """Leave the process group this run started, all ranks together (destroying it while a
        rank still writes can hang, pytorch/pytorch#75097), once the caller has dropped every
        wrapper ``wrap`` made.

        The order matters. A DDP wrapper's Reducer holds the process group from C++; freed
        after the group left torch's registry, it drops the last reference, and the gloo group
        is destroyed there with the GIL held: its destructor joins the group's worker thread,
        which may be freeing the barrier's work and wait for the GIL (a deadlock). Freed while
        the group is registered, it is not the last holder; ``destroy_process_group`` then
        drops the last reference through the group's Python handle, which releases the GIL
        before the destructor runs."""
        if not self.owns_group:
            return
        if self.compile:
            torch._dynamo.reset()  # compiled code and its guards may hold the wrapper
        gc.collect()  # a wrapper without references may still sit in a reference cycle
        if self._ddp is not None and self._ddp() is not None:
            raise RuntimeError("a DistributedDataParallel wrapper is still referenced: drop it "
                               "before closing the process group")
        dist.barrier()
        dist.destroy_process_group()
