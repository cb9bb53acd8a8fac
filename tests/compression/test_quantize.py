"""nn.quantize: int8 Linear (dynamic and static) against float, sizes, calibration."""
import numpy as np
import pytest

import autodiff as ad
import nn
from nn import quantize as Q
from tests.conftest import to_numpy


def _mlp():
    ad.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def test_per_channel_symmetric_weights():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -0.03]], dtype=np.float32)
    q, s = Q.quantize_per_channel_symmetric(w)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s.shape == (3,)
    np.testing.assert_allclose(s, [1.0 / 127, 1.0, 3.0 / 127], rtol=1e-6)
    assert q[0, 1] == -127 and q[2, 0] == 127 and np.all(q[1] == 0)
    assert np.abs(q * s[:, None] - w).max() <= s.max() / 2 + 1e-7


@pytest.mark.parametrize("accumulate", ["float", "int32"])
def test_dynamic_quantized_linear_close_to_float(device, accumulate):
    model = _mlp().to(device)
    qm = Q.quantize_dynamic(model, accumulate=accumulate)
    assert isinstance(qm[0], Q.DynamicQuantizedLinear) and isinstance(qm[2], Q.DynamicQuantizedLinear)
    assert isinstance(model[0], nn.Linear)  # the original is untouched (not inplace)
    assert qm[0].weight_int8.dtype == np.int8
    x = ad.randn(20, 16, device=device)
    ref, got = to_numpy(model(x)), to_numpy(qm(x))
    err = np.abs(ref - got).max()
    assert err < 0.02 * np.abs(ref).max() + 1e-3, err
    assert got.shape == (20, 4) and got.dtype == np.float32
    # 'float' accumulation is exactly float matmul with the dequantised weights
    lin = qm[0]
    expect = to_numpy(x) @ to_numpy(lin.weight()).T + to_numpy(lin.bias)
    if accumulate == "float":
        np.testing.assert_allclose(to_numpy(lin(x)), expect, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="DynamicQuantizedLinear: input has 3 features"):
        lin(ad.randn(2, 3, device=device))


def test_quantized_model_is_4x_smaller_and_spec():
    model = _mlp()
    qm = Q.quantize_dynamic(model)
    fsize, qsize = Q.model_size_bytes(model), Q.model_size_bytes(qm)
    weights = 16 * 32 + 32 * 4
    assert fsize == 4 * (weights + 32 + 4)
    assert qsize == weights + 4 * (32 + 4) + 4 * (32 + 4)  # int8 weights + float scales + float bias
    assert fsize / qsize > 2.5
    only_first = Q.quantize_dynamic(model, qconfig_spec={"0"})
    assert isinstance(only_first[0], Q.DynamicQuantizedLinear) and isinstance(only_first[2], nn.Linear)
    by_type = Q.quantize_dynamic(model, qconfig_spec={nn.Linear})
    assert isinstance(by_type[2], Q.DynamicQuantizedLinear)
    sd = qm.state_dict()
    assert sd["0.weight_int8"].dtype == np.int8 and "0.weight_scale" in sd
    with pytest.raises(ValueError, match="only dtype=qint8"):
        Q.quantize_dynamic(model, dtype=ad.float16)
    single = Q.quantize_dynamic(nn.Linear(3, 2))
    assert isinstance(single, Q.DynamicQuantizedLinear)


def test_observers():
    obs = Q.MinMaxObserver()
    obs(ad.tensor([[-1.0, 0.5], [2.0, 3.0]]))
    obs(ad.tensor([4.0, 1.0]))
    scale, zp = obs.calculate_qparams()
    assert scale == pytest.approx(5.0 / 255) and zp == round(1.0 / (5.0 / 255))
    pos = Q.MinMaxObserver()
    pos(ad.tensor([1.0, 2.0]))  # range extended to include zero
    assert pos.calculate_qparams() == (pytest.approx(2.0 / 255), 0)
    ma = Q.MovingAverageMinMaxObserver(averaging_constant=0.5)
    ma(ad.tensor([0.0, 2.0]))
    ma(ad.tensor([0.0, 4.0]))
    assert float(ma.max_val.item()) == pytest.approx(3.0)
    with pytest.raises(RuntimeError, match="no data observed"):
        Q.MinMaxObserver().calculate_qparams()


def test_static_quantization_with_calibration():
    model = _mlp()
    calib = [ad.randn(32, 16) for _ in range(4)]
    prepared = Q.prepare(model)
    with ad.no_grad():
        for x in calib:
            prepared(x)
    obs = prepared[0].input_observer
    lo = min(float(to_numpy(x).min()) for x in calib)
    assert float(obs.min_val.item()) == pytest.approx(lo)
    qm = Q.convert(prepared)
    assert isinstance(qm[0], Q.QuantizedLinear) and isinstance(qm[2], Q.QuantizedLinear)
    assert qm[0].input_scale == pytest.approx(obs.calculate_qparams()[0])
    x = calib[0]
    ref, got = to_numpy(model(x)), to_numpy(qm(x))
    assert np.abs(ref - got).max() < 0.05 * np.abs(ref).max(), np.abs(ref - got).max()
    # the output is on the calibrated uint8 grid
    grid = (got - 0) / qm[2].scale + qm[2].zero_point
    np.testing.assert_allclose(grid, np.rint(grid), atol=1e-3)
    qm2 = Q.quantize_static(model, [(x, None) for x in calib])
    np.testing.assert_allclose(to_numpy(qm2(x)), got)
    with pytest.raises(RuntimeError, match="no observed Linear"):
        Q.convert(model)
