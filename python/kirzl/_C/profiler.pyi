"""
Kernel times by kernel and by family (GEMM, attention, ...).
"""
from __future__ import annotations
import kirzl._C
import typing
__all__: list[str] = ['Profile', 'ProfileRow', 'kernel_family']
class ProfileRow:
    """
    The calls of one kernel (or kernel family) on one device type.
    """
    def __repr__(self) -> str:
        ...
    @property
    def calls(self) -> int:
        """
        Calls recorded.
        """
    @property
    def device(self) -> kirzl._C.DeviceType:
        """
        Where the calls ran (DeviceType.CPU or DeviceType.CUDA).
        """
    @property
    def device_ms(self) -> float:
        """
        Milliseconds the calls ran on the device (CUDA events; host_ms for CPU kernels).
        """
    @property
    def host_ms(self) -> float:
        """
        Milliseconds the calling thread spent in the calls (a CUDA kernel's launch).
        """
    @property
    def name(self) -> str:
        """
        The kernel's name, or the family.
        """
    @property
    def untimed_calls(self) -> int:
        """
        CUDA calls not in device_ms: device_time off, or made during a CUDA graph capture.
        """
class Profile:
    """
    Records the kernels the creating thread runs while it is active (as a context manager, from
    ``with`` to its end), and breaks their time down by kernel and by family::
    
        with kirzl.profiler.Profile() as prof:
            for _ in range(10):
                step()
        print(prof.table())
        gemm_ms = sum(r.device_ms for r in prof.by_family() if r.name == "gemm")
    
    CUDA kernels are timed on the device with CUDA events around each call, which adds a little host
    time per call: measure throughput without a Profile. Only this thread's kernel calls are counted
    (not collectives, not a DataLoader's workers). One Profile at a time per thread.
    """
    def __enter__(self) -> Profile:
        ...
    def __exit__(self, arg0: typing.Any, arg1: typing.Any, arg2: typing.Any) -> None:
        ...
    def __init__(self, device_time: bool = True) -> None:
        """
        Starts recording. device_time=False times CUDA calls on the host only (their launch).
        """
    def by_family(self) -> list[ProfileRow]:
        """
        The rows summed by kernel family, largest first.
        """
    def by_kernel(self) -> list[ProfileRow]:
        """
        One row per kernel and device type, largest device time first (waits for the CUDA events).
        """
    def reset(self) -> None:
        """
        Forgets the calls recorded so far (waiting for their CUDA events) and a timing error kept from them; recording goes on if it was on.
        """
    def stop(self) -> None:
        """
        Stops recording; the recorded calls stay.
        """
    def table(self, max_kernels: typing.SupportsInt | typing.SupportsIndex = 20) -> str:
        """
        A printable table: the families, then the largest kernels, with their shares.
        """
    def total_device_ms(self) -> float:
        """
        The device time of every recorded call, in milliseconds.
        """
    @property
    def recording(self) -> bool:
        """
        True until stop().
        """
def kernel_family(kernel: str) -> str:
    """
    The family of a kernel name in a breakdown ('gemm', 'attention', ..., 'other').
    """
