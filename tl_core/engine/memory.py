"""Refuse a run that cannot fit in memory before it allocates, with advice, instead of letting the kernel's OOM
killer end it (and, before worker processes, the server and every student's page with it).

An estimate from a probe, on purpose coarse: decoded inputs for every split, plus one training batch's
activations (every layer's output, as kept for the backward pass), scaled from a 32-pixel probe
by the image area. It only refuses what exceeds the memory available, so a run it lets through may still be
slow, and one it refuses would have needed at least most of what it names.
"""

from __future__ import annotations

import torch
from torch import nn

from tl_core.errors import MEMORY_ADVICE, UserError

PROBE_SIZE = 32
GB = 2**30


class OutOfMemoryRisk(UserError):
    """The run would need more memory than the device has."""


def available_bytes(device: torch.device) -> int | None:
    """Free memory on `device` now: MemAvailable on Linux for the CPU, the CUDA allocator's view on a GPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@torch.no_grad()
def activation_bytes_per_item(model: nn.Module, image_size: int) -> int:
    """Bytes of every leaf module's output for one image at `image_size` (float32), from a 32-pixel probe."""
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        model(model.vision_input(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, dtype=torch.uint8, device=device)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return int(total * 4 * (image_size / PROBE_SIZE) ** 2)


def check_fits(model, *, image_size: int, batch_size: int, items: int, trains_backbone: bool,
               device: torch.device) -> None:
    """Raise OutOfMemoryRisk when the estimate exceeds the memory available (vision runs)."""
    free = available_bytes(device)
    if free is None or model.family != "vision":
        return
    inputs = items * 3 * image_size * image_size  # uint8, decoded once per split
    per_item = activation_bytes_per_item(model, image_size)
    batch = per_item * batch_size if trains_backbone else 0  # outputs kept for backward; no-grad passes keep none
    need = inputs + batch
    if need > free:
        raise OutOfMemoryRisk(
            f"This run needs about {need / GB:,.1f} GB of memory ({inputs / GB:,.1f} GB of decoded images at "
            f"{image_size} px, {batch / GB:,.1f} GB for a batch of {batch_size}) but {device.type} has "
            f"{free / GB:,.1f} GB free: {MEMORY_ADVICE}.")
