"""`langdetect train` under torchrun: DistributedDataParallel, NCCL on GPUs and gloo on CPU.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them (a plain `langdetect train`) everything here
is a no-op for a world of one. Rank 0 trains the tokenizer and shares it (the Unigram trainer is not
deterministic, so every rank must use the very same one), logs to MLflow and registers the version;
every rank trains on its own share of the training split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def join(prefer_cuda: bool = True) -> World:
    """Joins the process group that torchrun set up (NCCL with one GPU per rank, else gloo)."""
    import torch

    size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = prefer_cuda and torch.cuda.is_available()
    if size == 1:
        return World(device="cuda" if cuda else "cpu")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    else:  # ranks sharing a machine's cores: one share each, or they all fight over every core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", size))))
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return World(rank, size, local_rank, f"cuda:{local_rank}" if cuda else "cpu")


def leave(world: World) -> None:
    import torch

    if world.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def from_main(world: World, make):
    """`make()` on rank 0 only; every rank gets its (picklable) result."""
    if not world.distributed:
        return make()
    import torch

    box = [make() if world.is_main else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        import torch

        torch.distributed.barrier()


def shard(indices: range | list[int], world: World) -> list[int]:
    """This rank's share of the examples, as DistributedSampler splits them: every world.size-th one."""
    return list(indices)[world.rank :: world.size]


def wrap(model, world: World):
    """DDP around the model in a distributed run (gradients averaged across ranks at each step)."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.local_rank] if world.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model):
    return getattr(model, "module", model)
