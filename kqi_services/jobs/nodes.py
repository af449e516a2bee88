"""Detection of this machine's capacity: cores, memory and NVIDIA GPUs.

GPUs are found through NVML (``pynvml``) when importable, else ``nvidia-smi``;
a machine without either has none. The embedded node is seeded from this.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field


@dataclass
class GpuDevice:
    index: int
    name: str
    uuid: str
    memory_mib: int


@dataclass
class NodeCapacity:
    name: str
    cpu: int
    memory_gb: int
    gpus: list[GpuDevice] = field(default_factory=list)


def detect_cpu() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def detect_memory_gb(meminfo: str = "/proc/meminfo") -> int:
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return max(1, int(line.split()[1]) // (1024 * 1024))
    except OSError:
        pass
    return 1


def parse_nvidia_smi(output: str) -> list[GpuDevice]:
    """Parse ``nvidia-smi --query-gpu=index,name,uuid,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[3]))
        except ValueError:
            memory = 0
        gpus.append(GpuDevice(int(parts[0]), parts[1], parts[2], memory))
    return gpus


def detect_gpus() -> list[GpuDevice]:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(h)
                uuid = pynvml.nvmlDeviceGetUUID(h)
                mem = pynvml.nvmlDeviceGetMemoryInfo(h).total // (1024 * 1024)
                gpus.append(GpuDevice(i, _text(name), _text(uuid), int(mem)))
            return gpus
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML (no driver, no library): try nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,uuid,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def detect_node() -> NodeCapacity:
    name = socket.gethostname().split(".")[0] or "localhost"
    return NodeCapacity(name=name, cpu=detect_cpu(), memory_gb=detect_memory_gb(), gpus=detect_gpus())


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
