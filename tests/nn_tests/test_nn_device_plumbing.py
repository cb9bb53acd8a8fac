"""nn on a FAKE device backend (NumPy arrays registered as the "cuda" array type; see
tests/test_cuda_plumbing.py): Module.to moves parameters in place, layers and losses keep every array on
the device, and a LeNet-style training step neither copies to the host nor reads a device value there.
Plumbing only: NOT GPU validation."""
import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
from autodiff import backends
from tests.test_cuda_plumbing import HOST_READS, FakeCudaBackend, FakeGpuArray


@pytest.fixture
def fake_cuda(monkeypatch):
    """The fake "cuda" backend of tests/test_cuda_plumbing.py, registered for one test."""
    b = FakeCudaBackend()
    monkeypatch.setitem(backends._instances, "cupy", b)
    monkeypatch.setitem(backends._by_array_type, FakeGpuArray, b)
    return b


def test_module_to_fake_cuda_in_place(fake_cuda):
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ps = list(m.parameters())
    m.to("cuda")
    assert all(p is q for p, q in zip(ps, m.parameters()))
    assert all(type(p.data) is FakeGpuArray for p in m.parameters())
    assert type(m[1].running_mean.data) is FakeGpuArray and m[1].num_batches_tracked.device == "cuda:0"
    sd = m.state_dict()
    assert all(t.device == "cuda:0" for t in sd.values())
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).cuda()
    m2.load_state_dict({k: v for k, v in sd.items()})
    m.cpu()
    assert all(type(p.data) is np.ndarray for p in m.parameters())


def test_lenet_step_stays_on_device_without_host_reads(fake_cuda):
    autodiff.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 2 * 2, 3)).to("cuda")
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = autodiff.randn(4, 1, 8, 8, device="cuda")
    y = autodiff.randint(0, 3, (4,), device="cuda")
    fake_cuda.to_host = 0
    HOST_READS.clear()
    for _ in range(2):
        model.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        with autodiff.no_grad():
            for p in model.parameters():
                p.data -= 0.1 * p.grad.data
    assert loss.device == "cuda:0"
    assert all(type(p.grad.data) is FakeGpuArray for p in model.parameters())
    assert fake_cuda.to_host == 0, "a host copy happened in the training step"
    assert HOST_READS == [], f"device values read on the host: {HOST_READS}"


def test_losses_and_attention_stay_on_device(fake_cuda):
    z = autodiff.randn(5, 4, device="cuda", requires_grad=True)
    t = autodiff.tensor([0, 1, 3, 2, 1], device="cuda")
    HOST_READS.clear()
    fake_cuda.to_host = 0
    losses = [F.cross_entropy(z, t), F.cross_entropy(z, t, ignore_index=1, weight=autodiff.ones(4, device="cuda")),
              F.nll_loss(F.log_softmax(z, 1), t), F.mse_loss(z, z.detach() * 0),
              F.binary_cross_entropy_with_logits(z, autodiff.rand(5, 4, device="cuda")),
              F.kl_div(F.log_softmax(z, 1), F.softmax(z.detach(), 1), reduction="batchmean")]
    q = autodiff.randn(1, 2, 3, 4, device="cuda", requires_grad=True)
    losses.append(F.scaled_dot_product_attention(q, q, q, is_causal=True).sum())
    emb = nn.Embedding(6, 2).cuda()
    losses.append(emb(autodiff.tensor([1, 5], device="cuda")).sum())
    sum(losses[1:], losses[0]).backward()
    assert z.grad.device == "cuda:0" and q.grad.device == "cuda:0"
    assert fake_cuda.to_host == 0 and HOST_READS == []
