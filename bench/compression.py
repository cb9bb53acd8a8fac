"""Compression benchmark: what pruning and quantisation buy in parameters, bytes and inference time.

1. Structured pruning (`ln_structured`, rows of the hidden Linear layers) and physical shrinking
   (`prune.shrink_linear_stack`): parameters, bytes, batch-inference time of the masked model (dense
   shapes) vs the shrunk one, and the largest output difference (should be ~1e-6: same outputs).
2. Unstructured global pruning at 90%: the masked model keeps dense shapes, so time does not fall
   (dense BLAS does not skip zeros) — printed to show it honestly.
3. Dynamic int8 quantisation: bytes and time of float vs int8 (float and int32 accumulation).
4. A small CNN (conv-pool-conv-pool-linear-linear on 28x28 inputs) with half of the channels of both
   convolutions and half of the hidden units pruned by `ln_structured`, shrunk with
   `prune.shrink_structured`: parameters, time and output difference.

Times: median of --repeats interleaved runs after a warm-up, in the same process; ratios are vs the
dense float32 model measured in the same run.

    .venv/bin/python -m bench.compression [--hidden 1024 --batch 512 --repeats 5]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np

import autodiff as ad
import nn
from nn import quantize as Q
from nn.utils import prune


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def time_models(models, x, repeats):
    """Median seconds of one no-grad forward per model, runs interleaved after one warm-up each."""
    times = {k: [] for k in models}
    with ad.no_grad():
        for m in models.values():
            m.eval()
            m(x)
        for _ in range(repeats):
            for k, m in models.items():
                t0 = time.perf_counter()
                out = m(x)
                out.data.sum()  # materialise (and sync on GPU backends via the host read below)
                ad.backends._by_array_type[type(out.data)].synchronize()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def cnn_shrink(args):
    ad.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    x = ad.randn(min(args.batch, 128), 1, 28, 28)
    pruned = copy.deepcopy(cnn)
    for i in (0, 3, 7):
        prune.ln_structured(pruned[i], "weight", amount=0.5, n=2, dim=0)
    small = prune.shrink_structured(pruned, example_input=x)
    with ad.no_grad():
        diff = float(np.abs(pruned(x).numpy() - small(x).numpy()).max())
    times = time_models({"dense": cnn, "masked": pruned, "shrunk": small}, x, args.repeats)
    print(f"CNN conv32-conv64-fc128 on 28x28, batch {x.shape[0]}: 50% of channels/units pruned and shrunk")
    print(f"{'model':<12}{'params':>10}{'ms':>9}{'time vs dense':>15}")
    for k, m in (("dense", cnn), ("masked", pruned), ("shrunk", small)):
        print(f"{k:<12}{n_params(m):>10,}{1e3 * times[k]:>9.2f}{times[k] / times['dense']:>15.2f}")
    print(f"max |masked - shrunk| output = {diff:.2e}")
    return {"params": {"dense": n_params(cnn), "shrunk": n_params(small)}, "times": times, "max_abs_diff": diff}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    h = args.hidden

    ad.manual_seed(0)
    dense = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10))
    x = ad.randn(args.batch, 784)
    with ad.no_grad():
        ref = dense(x).numpy()
    results = {"args": vars(args)}

    # 1. structured pruning + shrinking
    rows = []
    models = {"dense": dense}
    for frac in (0.5, 0.75):
        m = nn.Sequential(*[type(layer)(layer.in_features, layer.out_features) if isinstance(layer, nn.Linear)
                            else layer for layer in dense])
        m.load_state_dict(dense.state_dict())
        prune.ln_structured(m[0], "weight", amount=frac, n=2, dim=0)
        prune.ln_structured(m[2], "weight", amount=frac, n=2, dim=0)
        small = prune.shrink_linear_stack(m)
        with ad.no_grad():
            diff = float(np.abs(m(x).numpy() - small(x).numpy()).max())
        models[f"masked {int(frac * 100)}% rows"] = m
        models[f"shrunk {int(frac * 100)}% rows"] = small
        rows.append({"fraction": frac, "params_masked": n_params(m), "params_shrunk": n_params(small),
                     "bytes_shrunk": Q.model_size_bytes(small), "max_abs_diff": diff})
    # 2. unstructured 90%
    un = nn.Sequential(*[type(layer)(layer.in_features, layer.out_features) if isinstance(layer, nn.Linear)
                         else layer for layer in dense])
    un.load_state_dict(dense.state_dict())
    prune.global_unstructured([(un[i], "weight") for i in (0, 2, 4)], prune.L1Unstructured, amount=0.9)
    models["unstructured 90% (masked)"] = un
    # 3. quantisation
    models["dynamic int8 (float acc)"] = Q.quantize_dynamic(dense)
    models["dynamic int8 (int32 acc)"] = Q.quantize_dynamic(dense, accumulate="int32")
    times = time_models(models, x, args.repeats)

    base_t, base_b, base_p = times["dense"], Q.model_size_bytes(dense), n_params(dense)
    print(f"MLP 784-{h}-{h}-10, batch {args.batch}, backend {ad.get_cpu_backend().name}; median of "
          f"{args.repeats} interleaved runs")
    print(f"{'model':<28}{'params':>12}{'bytes':>12}{'bytes vs dense':>16}{'ms':>9}{'time vs dense':>15}")
    table = []
    for k, m in models.items():
        params = n_params(m)
        b = Q.model_size_bytes(m)
        if k.startswith("masked") or k.startswith("unstructured"):
            params_note = f"{params:,}*"
        else:
            params_note = f"{params:,}"
        print(f"{k:<28}{params_note:>12}{b:>12,}{b / base_b:>16.3f}{1e3 * times[k]:>9.2f}"
              f"{times[k] / base_t:>15.2f}")
        table.append({"model": k, "params": params, "bytes": b, "time_s": times[k], "time_ratio": times[k] / base_t})
    print("* masked models store weight_orig + weight_mask (dense shapes), so bytes grow until prune.remove()")
    for r in rows:
        print(f"structured {int(r['fraction'] * 100)}% rows: {r['params_shrunk']:,} params after shrinking "
              f"({r['params_shrunk'] / base_p:.3f} of dense), max |masked - shrunk| output = {r['max_abs_diff']:.2e}")
    q = Q.quantize_dynamic(dense)
    with ad.no_grad():
        qerr = float(np.abs(q(x).numpy() - ref).max())
    print(f"dynamic int8: max |float - int8| logit = {qerr:.3e} (logit scale {np.abs(ref).max():.3f})")
    results.update({"table": table, "structured": rows, "int8_max_abs_err": qerr})
    results["cnn"] = cnn_shrink(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
