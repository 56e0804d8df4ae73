"""Process and device settings for training: the stop flag every training loop
checks, per-process torch settings (denormals, threads, allocator; on a CUDA device
IEEE float32 matmuls and convolutions, no TF32), a worker's exit when the sweep's
process dies, and which torch device a ``--device`` string names."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import time
import warnings
from pathlib import Path

import torch

from ..config import BvsimRuntimeWarning

__all__ = [
    "STOP",
    "check_stop",
    "device_type_of",
    "exit_with_owner",
    "pin_cuda_numerics",
    "resolve_device",
    "resolve_devices",
    "resolve_sweep_devices",
    "settings_restored",
    "setup_process",
]


#: Set to stop every training loop of this process at its next step: a sweep whose
#: device threads must end before it exits (Ctrl-C, SIGTERM) sets it and clears it
#: when it starts again.
STOP = threading.Event()


def check_stop() -> None:
    """Raise KeyboardInterrupt in a training loop when :data:`STOP` is set."""
    if STOP.is_set():
        raise KeyboardInterrupt("training stopped")


def setup_process(
    n_threads: int | None = 1, device: str | torch.device | None = None, owner: int | None = None
) -> None:
    """Per-process torch settings for training: flush denormals, cap threads, for a
    CUDA ``device`` pin its float32 numerics (:func:`pin_cuda_numerics`), and in a
    worker process of the sweep's process ``owner`` (its pid) exit when that one dies
    (:func:`exit_with_owner`).

    Strong weight decay drives weights into denormal floats, which are several times
    slower on CPUs; flushing them changes nothing measurable in the results.
    """
    torch.set_flush_denormal(True)
    if n_threads is not None and torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    _keep_freed_memory()
    if device is not None and device_type_of(device) == "cuda":
        pin_cuda_numerics()
    exit_with_owner(owner)


#: (depth, saved settings) of :func:`settings_restored`: sweeps nested or run at once
#: in threads of one process restore the settings found by the first, when the last ends.
_RESTORE = {"depth": 0, "saved": None}
_RESTORE_LOCK = threading.Lock()


@contextlib.contextmanager
def settings_restored():
    """Put back the process-wide torch settings :func:`setup_process` changes on the
    CPU (thread count, denormal flushing) when the block ends: a sweep that trains in
    the caller's process (one job, the threading backend) leaves the caller's torch as
    it found it. A CUDA device's pinned float32 numerics stay (README)."""
    with _RESTORE_LOCK:
        if _RESTORE["depth"] == 0:
            tiny = torch.tensor([1e-40], dtype=torch.float32)  # denormal in float32 only
            _RESTORE["saved"] = (torch.get_num_threads(), tiny.mul(1.0).item() == 0.0)
        _RESTORE["depth"] += 1
    try:
        yield
    finally:
        with _RESTORE_LOCK:
            _RESTORE["depth"] -= 1
            if _RESTORE["depth"] == 0:
                threads, flushing = _RESTORE["saved"]
                torch.set_num_threads(threads)
                torch.set_flush_denormal(flushing)


#: Exit status of a worker that ended because the sweep's process died.
OWNER_GONE_EXIT = 75
#: (this process, the owner it watches) for each watch started: one per owner, and a
#: forked child (whose copy of this set names its parent) starts its own.
_WATCHING: set[tuple[int, int]] = set()
_WATCHING_LOCK = threading.Lock()


def exit_with_owner(owner: int | None, interval: float = 1.0) -> None:
    """End this worker process (``os._exit``) within about ``interval`` seconds of
    the death of process ``owner``, the one that started the sweep.

    A worker killed with its sweep (``kill -9`` of the main process) would otherwise
    train on as an orphan, holding its memory and the sweep's stdout and stderr (a
    wrapper reading them to the end would hang). Started once per process and owner:
    a daemon thread polls every ``interval`` seconds. A worker that is ``owner``'s
    child watches its own parent (re-parented the moment ``owner`` dies, whatever
    reuses the pid); any other watches the pid itself (a zombie counts as dead). Does
    nothing when ``owner`` is None or this process (training in the sweep's own
    process: ``n_jobs=1``, threads). Not a parent-death signal
    (``PR_SET_PDEATHSIG``): that fires when the parent *thread* ends, which for a
    pool's manager thread may be while the sweep lives.
    """
    pid = os.getpid()
    if owner is None or owner == pid:
        return
    with _WATCHING_LOCK:
        if (pid, owner) in _WATCHING:
            return
        _WATCHING.add((pid, owner))
    child = os.getppid() == owner

    def watch():
        while (os.getppid() == owner) if child else _alive(owner):
            time.sleep(interval)
        os._exit(OWNER_GONE_EXIT)

    threading.Thread(target=watch, name="bvsim-exit-with-owner", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux's /proc tells)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def pin_cuda_numerics() -> None:
    """float32 on CUDA as IEEE float32: no TF32 in matmuls or cuDNN convolutions and
    RNNs, deterministic cuDNN algorithms (process-wide; the CPU is not affected).

    Only torch's new precision API (``fp32_precision``) is used: torch 2.9+ raises
    when a flag set through it is read through the legacy ``allow_tf32`` (or the
    reverse), so this never touches ``allow_tf32``. One exception: cuBLAS checks that
    the legacy matmul precision agrees with the new one on every float32 matmul, so
    where the process lowered it (``torch.set_float32_matmul_precision("high")``) it
    is set back to ``"highest"``, the one call that sets both. A torch without the new
    API (before 2.9) gets the legacy flags instead (``allow_tf32`` off for matmuls and
    cuDNN, matmul precision ``"highest"``). Does not call
    ``torch.use_deterministic_algorithms``. Setting the flags needs no GPU.
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "ieee"
        if torch.get_float32_matmul_precision() != "highest":
            torch.set_float32_matmul_precision("highest")
        for op in ("conv", "rnn"):
            if hasattr(getattr(cudnn, op, None), "fp32_precision"):
                getattr(cudnn, op).fp32_precision = "ieee"
    else:  # torch before 2.9: only the legacy flags exist (cuDNN's TF32 is on by default)
        torch.set_float32_matmul_precision("highest")
        matmul.allow_tf32 = False
        cudnn.allow_tf32 = False
    cudnn.deterministic = True
    override = os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "0")
    if override not in ("", "0"):
        warnings.warn(
            f"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE={override}: cuBLAS may run float32 matmuls "
            "in TF32 whatever the precision flags say; unset it for IEEE float32",
            BvsimRuntimeWarning,
            stacklevel=2,
        )


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks instead of returning them to the OS.

    A training step allocates and frees activations of a few hundred KiB; above
    glibc's default mmap threshold each one is a fresh mmap whose pages fault in
    again. Raising the mmap and trim thresholds reuses them (measured: 8-15 % faster
    steps on W2 on this machine). A no-op where libc has no ``mallopt``.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 256 << 20)
    mallopt(m_trim_threshold, 512 << 20)


def resolve_device(device: str, option: str = "--device") -> torch.device:
    """What a device string means, decided here only: ``'cpu'``, ``'cuda'``,
    ``'cuda:N'`` or ``'auto'`` (cuda when available).

    Parameters
    ----------
    device : str
    option : str
        The option the string came from, named in the error messages.

    Raises
    ------
    ValueError
        If the string names no such device, or a CUDA device is asked for and none
        (or not that one) is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = f"{option} {device!r}: expected cpu, cuda, cuda:N or auto"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(expected) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{option} {device!r}: no CUDA device is available here "
                f"(use {option} cpu, or auto to fall back)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{option} {device!r}: only {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise ValueError(expected)
    return dev


def resolve_devices(devices: list[str], option: str = "--devices") -> list[str]:
    """Several devices at once, each resolved (:func:`resolve_device`), as text."""
    return [str(resolve_device(d, option)) for d in devices]


def resolve_sweep_devices(
    device: str = "cpu", devices: list[str] | None = None
) -> tuple[str, list[str] | None]:
    """A sweep's devices, resolved: ``(device, devices)``. With ``devices`` (several at
    once) each is resolved and ``device`` becomes their list as text (``cuda:0,cpu``, as
    ``run.json`` records it); without, ``device`` is resolved and ``devices`` is None.
    Resolving resolved devices gives them back."""
    if devices:
        devices = resolve_devices(devices)
        return ",".join(devices), devices
    return str(resolve_device(device)), None


def device_type_of(device: str | torch.device) -> str:
    """``'cpu'`` or ``'cuda'``: the type of a resolved device (``cpu``, ``cuda`` or
    ``cuda:N``), which sizes its chunks and says whether it has device memory."""
    return torch.device(device).type
