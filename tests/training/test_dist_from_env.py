"""`Dist.from_env`: joining the process group torchrun describes. The NCCL branch (a GPU run) is exercised as far
as a CPU machine can: torch.cuda.set_device and init_process_group are replaced by recorders, so the test checks
what from_env asks of them (the device each rank takes, the backend, the timeout), not NCCL itself."""
import datetime

import pytest
import torch
import torch.distributed

from advnets.training.distributed import TIMEOUT_ENV, Dist


@pytest.fixture
def recorded(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda backend, **kwargs: calls.append(("init", backend, kwargs)))
    return calls


@pytest.mark.parametrize("local_rank", [0, 3])
def test_a_gpu_rank_takes_its_local_gpu_and_joins_with_nccl(monkeypatch, recorded, local_rank):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", str(2 + local_rank % 2))
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    monkeypatch.setenv(TIMEOUT_ENV, "42")
    dist = Dist.from_env(torch.device("cuda"))
    assert dist == Dist(2 + local_rank % 2, 4, local_rank, "nccl")
    assert recorded[0] == ("set_device", local_rank)
    kind, backend, kwargs = recorded[1]
    assert (kind, backend) == ("init", "nccl")
    assert kwargs == {"timeout": datetime.timedelta(seconds=42), "device_id": torch.device("cuda", local_rank)}
    assert dist.device(torch.device("cuda")) == torch.device("cuda", local_rank)


def test_a_cpu_rank_joins_with_gloo_and_touches_no_gpu(monkeypatch, recorded):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    dist = Dist.from_env(torch.device("cpu"))
    assert dist == Dist(1, 2, 0, "gloo")
    assert recorded == [("init", "gloo", {"timeout": datetime.timedelta(seconds=300), "device_id": None})]


def test_without_torchrun_it_is_the_single_process_dist(monkeypatch, recorded):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert Dist.from_env(torch.device("cuda")) == Dist() and recorded == []
