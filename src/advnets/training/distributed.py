"""Data parallelism on torch.distributed: which rank this process is, and the few collectives training needs.

`torchrun --nproc_per_node=N -m advnets train ...` starts N processes with RANK, WORLD_SIZE and LOCAL_RANK set;
`Dist.from_env` joins them into one process group (NCCL on GPUs, Gloo on CPUs). Without those variables it is the
single-process `Dist()` whose collectives do nothing, so the same script runs with or without torchrun.

How a run is split (Algorithm1 does it, with `rows`):
* every rank holds the same parameters (same seed, same initialisation) and the same random stream; each draws the
  noise, dropout masks and sampled classes of the WHOLE global minibatch (train.batch_size rows) and keeps its own
  block of m / N rows, and takes the matching block of the data minibatch. So the examples, noise and masks of a
  step do not depend on N, and a run at any world size computes the same update up to float reduction order.
  The price is drawing N times the random numbers (measured by benchmarks/scaling.py).
* each rank's gradient is the mean over its m / N examples; `all_reduce_mean` averages them into the mean over the
  global minibatch (every loss is a mean, and each rank holds the same number of examples). The fused step's
  velocity update v <- mu v - lr g_r is averaged instead: with synchronised v, mean_r(mu v - lr g_r) = mu v - lr g.
  ONE all-reduce per update per player: the tensors are flattened into one buffer, and the step's statistics and
  a stop flag ride along as a few extra elements (so every rank logs global means and stops at the same step).
* a NaN on one rank becomes a NaN in the average on every rank, so every rank stops with the same DivergedError.
* a rank that dies is seen at once (its connections drop); one that is stopped (SIGSTOP, a frozen machine) is named
  by the heartbeat (heartbeat.py) after $ADVNETS_DIST_HEARTBEAT seconds of silence, while a rank that is only busy
  (rank 0 writing a checkpoint) goes on beating. On Gloo a collective is waited for in slices of WAIT_SLICE_S seconds,
  between which the heartbeat's verdict is looked at.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

import torch
import torch.distributed as td
# torch.distributed.nn.functional binds `group=group.WORLD` as the default argument of 10 functions when it is first
# imported. torch.optim imports it (through torch._dynamo) on the first optimizer: imported after a process group
# exists, those defaults would hold the default group, so destroy_process_group would not free it and its Gloo threads
# would run on into interpreter exit (the suspected cause of a rare C++ abort at exit, see Dist.close). Imported here,
# before any group exists, the defaults are None.
import torch.distributed.nn.functional  # noqa: F401

from ..errors import ConfigError
from .heartbeat import DistributedError, Heartbeat, seconds_from_env

__all__ = ["Dist", "DistributedError", "TIMEOUT_ENV"]

TIMEOUT_ENV = "ADVNETS_DIST_TIMEOUT"     # seconds a collective waits for a live but silent rank; default 300
WAIT_SLICE_S = 1.0                       # on Gloo, how often a waiting rank looks at the heartbeat's verdict


@dataclass
class Dist:
    """This process's place in the run: rank, world_size, local_rank and backend ("" when single-process)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    heartbeat: Heartbeat | None = field(default=None, compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def peer_stopped(self) -> bool:
        """The heartbeat found a rank that gives no sign of life."""
        return self.heartbeat is not None and self.heartbeat.error is not None

    @property
    def writes(self) -> bool:
        """Only rank 0 writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Dist":
        """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), or the single-process Dist.

        The backend is NCCL when `device` is a GPU (each process takes cuda:LOCAL_RANK), else Gloo."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        timeout = datetime.timedelta(seconds=seconds_from_env(TIMEOUT_ENV, 300))
        if not td.is_initialized():
            td.init_process_group(backend, timeout=timeout,
                                  device_id=torch.device("cuda", local) if backend == "nccl" else None)
        return cls(rank, world, local, backend, Heartbeat.start(rank, world))

    def device(self, device: torch.device) -> torch.device:
        """The device this rank computes on: cuda:LOCAL_RANK for a GPU run, else `device`."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    def local_batch(self, m: int) -> int:
        """This rank's rows of a global minibatch of m; m must split evenly."""
        if m % self.world_size:
            raise ConfigError(f"train.batch_size {m} does not split over {self.world_size} processes",
                              f"use a multiple of {self.world_size}, e.g. --set train.batch_size="
                              f"{max(self.world_size, m - m % self.world_size)}")
        return m // self.world_size

    def rows(self, n: int) -> slice:
        """This rank's block of n rows (n a multiple of the world size)."""
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def all_reduce_mean(self, tensors: list[torch.Tensor], extra: list[torch.Tensor] = ()) -> torch.Tensor | None:
        """Average `tensors` (in place) and the scalars `extra` over the ranks with one all-reduce; returns the
        averaged extras as one 1-D tensor (None when single-process: nothing is averaged)."""
        if not self.active:
            return None
        flat = torch.cat([t.reshape(-1) for t in tensors] +
                         [e.reshape(1).to(tensors[0].dtype) for e in extra])      # one buffer per player
        self._call("all_reduce", flat)
        flat.div_(self.world_size)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()
        return flat[offset:]

    def gather(self, obj) -> list | None:
        """Every rank's `obj` on rank 0 (a list in rank order), None elsewhere; [obj] when single-process."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size if self.rank == 0 else None
        self._call("gather_object", obj, out, dst=0)
        return out

    def _call(self, name: str, *args, **kwargs):
        """A collective; a dead, stopped or silent rank becomes one DistributedError line instead of a traceback."""
        beat = self.heartbeat
        try:
            if beat is None:
                return getattr(td, name)(*args, **kwargs)
            beat.check()
            if self.backend != "gloo" or name == "gather_object":     # no async_op (gather), or NCCL's own waits
                return getattr(td, name)(*args, **kwargs)
            self._wait(getattr(td, name)(*args, **kwargs, async_op=True), beat)
            return None
        except (RuntimeError, td.DistBackendError) as exc:
            if self.peer_stopped:                                       # the cause: a stopped peer
                beat.check()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            first = re.sub(r"^\[[^\]]*\] ", "", first)[:120]             # gloo's "[.../pair.cc:537] " prefix
            raise DistributedError(f"rank {self.rank} of {self.world_size} lost contact with the others ({first})",
                                   "a process died or hung; resume with `advnets train --resume RUN`") from None

    @staticmethod
    def _wait(work, beat: Heartbeat) -> None:
        """Wait for an asynchronous Gloo collective in slices, raising the heartbeat's error between them. A slice
        that runs out raises RuntimeError with the work still pending; a failed collective is completed."""
        while True:
            try:
                work.wait(timeout=datetime.timedelta(seconds=WAIT_SLICE_S))
                return
            except RuntimeError:
                if work.is_completed():
                    raise
            beat.check()

    def close(self, barrier: bool = True) -> None:
        """Leave the process group: destroy_process_group frees it and joins its Gloo threads (see the import of
        torch.distributed.nn.functional at the top). After a normal end every rank waits for the others first (`barrier`), so no
        rank tears its group down while a peer still talks to it. After an error there is no barrier: a peer may
        be gone. After a stopped peer (the heartbeat's error) the group is left as it is: tearing it down would wait
        for that peer; the heartbeat ends the process once the main thread is done (heartbeat.py).

        Why it matters: a Gloo worker thread that outlives the interpreter can drop the last reference to a
        finished collective's tensors during finalization, when taking the GIL ends the thread inside a noexcept
        destructor: std::terminate, "terminate called without an active exception" (pytorch/pytorch#179291
        describes the same abort for a group never destroyed)."""
        if not self.active:
            return
        met = False                         # every rank reached the barrier: a later verdict is about their exits
        if barrier and td.is_initialized():
            try:
                self._call("barrier")
                met = True
            except DistributedError:
                if self.peer_stopped:
                    raise
                # else a peer died after the end: the run is whole
        if self.peer_stopped and not met:
            return
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if td.is_initialized():
            td.destroy_process_group()
