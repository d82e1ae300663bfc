"""Pick the best device there is (CUDA, then MPS, then CPU), and fix the CPU threads a run trains on."""

from __future__ import annotations

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


def use_cpu_threads(threads: int = 1) -> int:
    """Train on exactly `threads` intra-op CPU threads, and flush denormal floats to zero (near-zero pretrained
    weights otherwise make x86 CPUs crawl).

    The count is a run setting (`TrainConfig.threads`), not the machine's: a reduction split over two threads
    rounds differently from one over a single thread, so the same config gives the same numbers only at the same
    count, whatever $OMP_NUM_THREADS says and however many other runs share the cores."""
    torch.set_flush_denormal(True)
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def deterministic(device: torch.device) -> bool:
    """Whether a run on `device` repeats to the last digit. On the CPU, with a fixed thread count and the run's own
    generators, it does; CUDA picks among kernels that add in a different order from call to call (cuDNN's
    convolutions, atomic adds), so the same config can differ in the last digits there, and the run says so."""
    return device.type == "cpu" or bool(torch.are_deterministic_algorithms_enabled())


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
