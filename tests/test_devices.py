"""resolve_device: the words --device accepts and what it says of a device this machine lacks."""

import re

import pytest
import torch

from posesynth.devices import resolve_device
from posesynth.errors import UsageError


def test_auto_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_a_device_passes_through():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name, message", [
    ("tpu", "--device tpu: not a device (use auto, cpu, cuda or cuda:N)"),
    ("meta", "--device meta: posesynth runs on auto, cpu, cuda or cuda:N only"),
])
def test_an_unusable_device_is_named(name, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        resolve_device(name)


def test_cuda_without_a_cuda_device_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="this machine has no CUDA device"):
        resolve_device("cuda")


def test_a_cuda_index_without_a_cuda_device_is_named_as_given(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=r"--device cuda:7: this machine has no CUDA device"):
        resolve_device("cuda:7")


def test_a_cuda_index_past_the_last_device_says_how_many(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match=r"--device cuda:1: this machine has 1 CUDA device\(s\)"):
        resolve_device("cuda:1")
