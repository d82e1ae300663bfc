"""Pick the best device there is (CUDA, then MPS, then CPU) and set CPU threads sensibly."""

from __future__ import annotations

import os

import torch

from tl_core.errors import UserError


class DeviceError(UserError):
    pass


def available_devices() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(requested: str = "auto") -> torch.device:
    requested = (requested or "auto").lower()
    found = available_devices()
    if requested == "auto":
        return torch.device(found[0])
    if requested not in ("cuda", "mps", "cpu"):
        raise DeviceError(f"unknown device '{requested}': use auto, cuda, mps or cpu")
    if requested not in found:
        raise DeviceError(f"device '{requested}' is not available here (found: {', '.join(found)}); use --device auto")
    return torch.device(requested)


def configure_cpu_threads() -> int:
    """Use every core this process may run on (torch's default can undercount in containers), and flush
    denormal floats to zero: near-zero pretrained weights otherwise make x86 CPUs crawl.

    An explicit OMP_NUM_THREADS wins: on a machine shared with other busy processes, spinning OpenMP threads
    that outnumber the free cores slow every kernel down by orders of magnitude."""
    torch.set_flush_denormal(True)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    cores = max(1, cores)
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
