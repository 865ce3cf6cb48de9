"""LMS scheduler goldens: diffusers v0.11.1's LMSDiscreteScheduler, unmodified (ELITE's sampler).

Writes OUT/lms/lms.safetensors (see testdata/lms/README.md for every tensor). Needs only numpy,
scipy, torch (Debian packages) and the diffusers v0.11.1 source tree with huggingface_hub:

    git --git-dir=DIFFUSERS_GIT archive v0.11.1 src | tar x -C /tmp/d0111
    PYTHONPATH=/tmp/d0111/src:DIR_WITH_ONLY_huggingface_hub /usr/bin/python3 \
        testdata/gen/make_lms.py --out /tmp/regen

(transformers must NOT be on the path: diffusers would import it, and nothing here needs it.)

Config: ELITE's `LMSDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
beta_schedule="scaled_linear", num_train_timesteps=1000)` (train_local.py:316-321).

Per N in (100, 7, 1): the timesteps (float64), sigmas (float32, N+1), and per step i the
coefficients `get_lms_coefficient(order, i, j)` exactly as step() calls them (scipy quad on the
float32 integrand; row padded with 0 to 4), plus the same integrals with the integrand in
float64 and tight tolerances (`coeffs64`, what an exact integral must match to ~1e-12).

Runs (N = 7 and N = 100; epsilon, and v_prediction for N = 7): a sample [1,4,5,3] ([1,2,3,3] for
N = 100) of
torch.randn(generator 0) * init_noise_sigma; at every step a model output of randn (generator 1)
mixed with the scaled input; records the scaled input, the model output and the step's output.
"""

import argparse
import os
import sys

import numpy as np
import torch
from scipy import integrate

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402

from diffusers import LMSDiscreteScheduler  # noqa: E402
import diffusers  # noqa: E402

assert diffusers.__version__ == "0.11.1", diffusers.__version__
torch.set_num_threads(1)

KW = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)


def coeffs64(sigmas, order, t, j):
    s = [float(x) for x in sigmas]

    def f(tau):
        prod = 1.0
        for k in range(order):
            if k == j:
                continue
            prod *= (tau - s[t - k]) / (s[t - j] - s[t - k])
        return prod

    return integrate.quad(f, s[t], s[t + 1], epsabs=1e-300, epsrel=1e-13, limit=200)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = {}
    for n in (100, 7, 1):
        s = LMSDiscreteScheduler(**KW)
        s.set_timesteps(n)
        out[f"n{n}.timesteps"] = s.timesteps.clone().double()
        out[f"n{n}.sigmas"] = s.sigmas.clone().float()
        c = np.zeros((n, 4))
        c64 = np.zeros((n, 4))
        for i in range(n):
            order = min(i + 1, 4)
            for j in range(order):
                c[i, j] = s.get_lms_coefficient(order, i, j)
                c64[i, j] = coeffs64(s.sigmas, order, i, j)
        out[f"n{n}.coeffs"] = torch.from_numpy(c)
        out[f"n{n}.coeffs64"] = torch.from_numpy(c64)
    s = LMSDiscreteScheduler(**KW)
    out["init_noise_sigma"] = s.init_noise_sigma.reshape(1).float()
    out["alphas_cumprod"] = s.alphas_cumprod.clone().float()

    for name, n, pred, shape in (("run7", 7, "epsilon", (1, 4, 5, 3)), ("run100", 100, "epsilon", (1, 2, 3, 3)),
                                 ("run7v", 7, "v_prediction", (1, 4, 5, 3))):
        s = LMSDiscreteScheduler(**KW, prediction_type=pred)
        s.set_timesteps(n)
        g0 = torch.Generator().manual_seed(0)
        g1 = torch.Generator().manual_seed(1)
        x = torch.randn(shape, generator=g0) * s.init_noise_sigma
        xs, ins, eps, outs = [], [], [], []
        for t in s.timesteps:
            xin = s.scale_model_input(x, t)
            e = torch.randn(x.shape, generator=g1) * 0.5 + 0.5 * xin
            y = s.step(e, t, x).prev_sample
            xs.append(x)
            ins.append(xin)
            eps.append(e)
            outs.append(y)
            x = y
        out[f"{name}.sample"] = torch.stack(xs)
        out[f"{name}.scaled"] = torch.stack(ins)
        out[f"{name}.model_output"] = torch.stack(eps)
        out[f"{name}.prev_sample"] = torch.stack(outs)
    d = os.path.join(a.out, "lms")
    os.makedirs(d, exist_ok=True)
    safetensors_io.save({k: v.contiguous() for k, v in out.items()}, os.path.join(d, "lms.safetensors"),
                        metadata={"generator": "testdata/gen/make_lms.py", "diffusers": diffusers.__version__})
    print("wrote", os.path.join(d, "lms.safetensors"))


if __name__ == "__main__":
    main()
