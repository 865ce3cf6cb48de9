"""Harmony-on-ELITE goldens (docs/elite.md B.3 + B.4), by elite_harmony.py on ELITE's functions.

    HARMONY_ELITE_REFSRC=DIR /usr/bin/python3 testdata/gen/make_elite_harmony.py --out OUT
        [--model testdata/elite-tiny] [--inputs testdata/inputs] [--elite OUT_OF_make_elite_goldens/elite]
        [--dtype float32|float64]

Writes OUT/elite/harmony/ (see testdata/elite/README.md):
  ortho.safetensors    w0, L, E_uncond, E_main, E_vis, E_perp, Q, rows
  step.safetensors     one batch-4 UNet call with masks (call 2 of run `kv`): inputs, masks used,
                       per-layer S* maps, eps, the masks it produces
  runs/kv.safetensors, runs/map.safetensors   whole runs (6 LMS steps), per call and per process
  runs/*_{main,vis}.png                       each process decoded as ELITE decodes
  summary.json         settings, rows, rank, layer sets, swap start, and the self-checks
The photo, mask, prompt, seed, latent size, steps, guidance and λ are those of make_elite_goldens.py.
"""

import argparse
import json
import os
import shutil
import tempfile

import elite_env  # noqa: F401
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import elite_harmony as H
import make_elite_goldens as G
import safetensors_io
import train_local
from datasets import CustomDatasetWithBG

VISUAL_PROMPT = "a S"
OPTS = {"ortho": True, "ortho_mode": "full", "swap": True, "swap_mode": "kv", "swap_start": 0.1, "tau": 0.3}
STEP_CALL = 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    here = os.path.dirname(elite_env.HERE)
    ap.add_argument("--model", default=os.path.join(here, "elite-tiny"))
    ap.add_argument("--inputs", default=os.path.join(here, "inputs"))
    ap.add_argument("--elite", default=os.path.join(here, "elite"), help="folder with lms.safetensors (plain ELITE) for the check")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--refsrc")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    root = os.path.join(args.out, "elite", "harmony")
    os.makedirs(os.path.join(root, "runs"), exist_ok=True)

    vae, unet, text_encoder, tokenizer, image_encoder, mapper, mapper_local, _ = elite_env.load_tools(args.model, dtype)
    from diffusers import LMSDiscreteScheduler

    # photo a + its mask through ELITE's dataset (as make_elite_goldens.py)
    d = tempfile.mkdtemp(prefix="elite_data_")
    masks = G.make_masks(os.path.join(d, "m"))
    shutil.copy(os.path.join(args.inputs, G.PHOTOS["a"]), os.path.join(d, G.PHOTOS["a"]))
    shutil.copy(masks["a"], os.path.join(d, os.path.basename(masks["a"])))
    ds = CustomDatasetWithBG(data_root=d, tokenizer=tokenizer, size=512, placeholder_token=G.PLACEHOLDER, template=G.TEMPLATE)
    ex = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, shuffle=False)))
    shutil.rmtree(d)
    prompt = G.TEMPLATE.format(G.PLACEHOLDER)

    with torch.no_grad():
        # validation's lines (train_local.py:344-368): features, w0, local features × mask16
        image = F.interpolate(ex["pixel_values_clip"].to(dtype), (224, 224), mode="bilinear")
        f = image_encoder(image, output_hidden_states=True)
        w0 = mapper([f[0], f[2][4], f[2][8], f[2][12], f[2][16]])[:, 0:1, :]
        image_obj = F.interpolate(ex["pixel_values_obj"].to(dtype), (224, 224), mode="bilinear")
        fo = image_encoder(image_obj, output_hidden_states=True)
        L = mapper_local([fo[0], fo[2][4], fo[2][8], fo[2][12], fo[2][16]])
        mask = F.interpolate(ex["pixel_values_seg"].to(dtype), (16, 16), mode="nearest")
        L = L * mask[:, 0].reshape(mask.shape[0], -1, 1)

        s_main = H.placeholder_index(prompt, G.PLACEHOLDER)
        s_vis = H.placeholder_index(VISUAL_PROMPT, G.PLACEHOLDER)
        assert s_main == int(ex["index"][0])
        ids_main = H.tokenize(tokenizer, prompt)
        ids_vis = H.tokenize(tokenizer, VISUAL_PROMPT)
        ids_u = H.tokenize(tokenizer, "")
        E_main = H.encode(text_encoder, ids_main, w0, torch.tensor([s_main]))
        E_vis = H.encode(text_encoder, ids_vis, w0, torch.tensor([s_vis]))
        E_u = H.encode(text_encoder, ids_u)
        ph_ids = tokenizer(G.PLACEHOLDER, add_special_tokens=False).input_ids
        T, klass = H.text_rows(ids_main[0].tolist(), s_main, ph_ids)
        E_perp, info = H.orthogonalize(E_main[0], T, s_main, OPTS["ortho_mode"])
        E_perp = E_perp[None]

        g = torch.manual_seed(G.SEED)
        latents0 = torch.randn((1, unet.in_channels) + G.LATENT_HW, generator=g).to(dtype)
        layers, lm, mask_layers, swap_layers = H.choose_layers(unet, G.LATENT_HW)
        grid = [v[1] for k, v in layers.items() if v[0] == lm][0]  # the level-Lm grid
        cols = {"main": [s_main], "vis": [s_vis]}
        index = {"main": torch.tensor([s_main]), "vis": torch.tensor([s_vis])}

        def go(name, E_m, opts, idx=index, cols_=cols):
            E4 = torch.cat([E_u, E_u, E_m, E_vis], dim=0)
            return H.run(unet, LMSDiscreteScheduler, E4, L, idx, G.LAMBDA, latents0, G.STEPS, G.GUIDANCE, opts,
                         grid, layers, mask_layers, swap_layers, cols_)

        runs = {}
        runs["kv"] = go("kv", E_perp, OPTS)
        runs["map"] = go("map", E_perp, dict(OPTS, swap_mode="map"))
        # checks (B.3.9, B.4.14-15)
        noswap = go("noswap", E_main, dict(OPTS, swap_start=G.STEPS))
        ones = {i: {"main": torch.ones(grid, dtype=torch.bool), "vis": torch.ones(grid, dtype=torch.bool)} for i in range(G.STEPS)}
        ident_kv = go("ident_kv", E_vis, dict(OPTS, force_masks=ones), idx={"main": index["vis"], "vis": index["vis"]},
                      cols_={"main": cols["vis"], "vis": cols["vis"]})
        ident_map = go("ident_map", E_vis, dict(OPTS, swap_mode="map"), idx={"main": index["vis"], "vis": index["vis"]},
                       cols_={"main": cols["vis"], "vis": cols["vis"]})

    @torch.no_grad()
    def decode(z):
        # ELITE's decode (train_local.validation / th2image)
        img = vae.decode(1 / 0.18215 * z.clone()).sample
        return img, train_local.th2image(img[0])

    checks = {}
    v = E_main[0, s_main].double()
    vp = E_perp[0, s_main].double().numpy()
    checks["ortho_max_abs_QT_vperp_over_norm_v"] = float(np.abs(info["Q"].T @ vp).max() / float(v.norm()))
    others = [r for r in range(77) if r != s_main]
    checks["ortho_other_rows_identical"] = bool(torch.equal(E_perp[0, others], E_main[0, others]))
    checks["E_main_row_s_equals_E_vis_row_s"] = bool(torch.equal(E_main[0, s_main], E_vis[0, s_vis]))
    checks["swap_start_call"] = int(np.floor(OPTS["swap_start"] * G.STEPS + 1e-9))
    lms_path = os.path.join(args.elite, "lms.safetensors")
    if os.path.exists(lms_path) and args.dtype == "float32":
        ref = safetensors_io.load(lms_path)["step%d.prev" % (G.STEPS - 1)]
        got = noswap[1]["main"]
        checks["noswap_main_vs_plain_elite_max_rel"] = float((got - ref).abs().max() / ref.abs().max())
    checks["ident_kv_allones_processes_identical"] = bool(torch.equal(ident_kv[1]["main"], ident_kv[1]["vis"]))
    checks["ident_map_processes_identical"] = bool(torch.equal(ident_map[1]["main"], ident_map[1]["vis"]))
    checks["kv_empty_vis_skips"] = runs["kv"][2].empty_vis_skips

    meta = {"producer": "testdata/gen/make_elite_harmony.py", "dtype": args.dtype}
    ortho = {"w0": w0, "L": L, "E_uncond": E_u, "E_main": E_main, "E_vis": E_vis, "E_perp": E_perp,
             "Q": torch.from_numpy(np.ascontiguousarray(info["Q"])), "pivots": torch.from_numpy(info["diag"]),
             "text_rows": torch.tensor(T, dtype=torch.int64), "ids_main": ids_main[0], "ids_vis": ids_vis[0],
             "ids_uncond": ids_u[0], "latents0": latents0}
    safetensors_io.save({k: v.detach().contiguous() for k, v in ortho.items()}, os.path.join(root, "ortho.safetensors"), metadata=meta)

    summary_runs = {}
    for name, (calls, lat, state) in runs.items():
        out = {}
        for i, c in enumerate(calls):
            out[f"call{i}.x4"] = c["x4"]
            out[f"call{i}.eps4"] = c["eps4"]
            for p in ("main", "vis"):
                out[f"call{i}.eps_{p}"] = c["eps"][p]
                out[f"call{i}.lat_out_{p}"] = c["lat_out"][p]
                out[f"call{i}.mask_raw_{p}"] = c[f"mask_raw_{p}"].float()
                out[f"call{i}.mask_norm_{p}"] = c[f"mask_norm_{p}"].float()
                out[f"call{i}.mask_{p}"] = c[f"mask_{p}"].to(torch.uint8)
                if c["masks_used"] is not None:
                    out[f"call{i}.mask_used_{p}"] = c["masks_used"][p].to(torch.uint8)
        for p in ("main", "vis"):
            img, pil = decode(lat[p])
            out[f"image_{p}"] = img
            pil.save(os.path.join(root, "runs", f"{name}_{p}.png"))
        out["latents_init"] = calls[0]["lat_in"]["main"]
        out["timesteps"] = torch.tensor([c["t"] for c in calls], dtype=torch.float64)
        safetensors_io.save({k: v.detach().contiguous() for k, v in out.items()}, os.path.join(root, "runs", name + ".safetensors"), metadata=meta)
        summary_runs[name] = {"swapped_calls": [i for i, c in enumerate(calls) if c["swapped"]],
                              "mask_pixels": {p: [int(c[f"mask_{p}"].sum()) for c in calls] for p in ("main", "vis")},
                              "empty_vis_skips": state.empty_vis_skips}

    # the batch-4 step golden: call STEP_CALL of run kv, with everything it needs as inputs
    calls, _, _ = runs["kv"]
    c = calls[STEP_CALL]
    E4 = torch.cat([E_u, E_u, E_perp, E_vis], dim=0)
    st = {"x4": c["x4"], "t": torch.tensor([c["t"]], dtype=torch.float64), "E4": E4, "L": L,
          "index": torch.tensor([s_main, s_vis], dtype=torch.int64), "lambda": torch.tensor([G.LAMBDA], dtype=torch.float64),
          "mask_used_main": c["masks_used"]["main"].to(torch.uint8), "mask_used_vis": c["masks_used"]["vis"].to(torch.uint8),
          "eps4": c["eps4"]}
    # per-layer S* maps of this call (recomputed: rerun the call with the same state)
    state = H.State(layers, mask_layers, swap_layers, cols, "kv")
    state.swap_now, state.masks = True, c["masks_used"]
    restore = H.install(unet, state)
    try:
        with torch.no_grad():
            eps4 = unet(c["x4"], torch.tensor(c["t"], dtype=torch.float64), encoder_hidden_states={"E": E4, "LOCAL": L, "INDEX": index, "LAMBDA": G.LAMBDA}).sample
            train_local.value_local_list.clear()
    finally:
        restore()
    assert torch.equal(eps4, c["eps4"])
    for name in mask_layers:
        for p in ("main", "vis"):
            st[f"map.{name}.{p}"] = state.maps[name][p]
    for p in ("main", "vis"):
        st[f"mask_raw_{p}"] = c[f"mask_raw_{p}"]
        st[f"mask_norm_{p}"] = c[f"mask_norm_{p}"].float()
        st[f"mask_{p}"] = c[f"mask_{p}"].to(torch.uint8)
    safetensors_io.save({k: v.detach().contiguous() for k, v in st.items()}, os.path.join(root, "step.safetensors"), metadata=meta)

    summary = {
        "prompt": prompt, "visual_prompt": VISUAL_PROMPT, "index_main": s_main, "index_vis": s_vis,
        "text_rows": T, "class_rows": klass, "rank": info["rank"], "ortho_lambda": info["lam"],
        "options": {k: v for k, v in OPTS.items()}, "lambda": G.LAMBDA, "guidance": G.GUIDANCE, "steps": G.STEPS,
        "seed": G.SEED, "latent_hw": list(G.LATENT_HW), "mask_level": lm, "grid": list(grid),
        "mask_layers": [n + ".transformer_blocks.0.attn2" for n in mask_layers],
        "swap_layers": [n + ".transformer_blocks.0.attn1" for n in swap_layers],
        "step_golden_call": STEP_CALL, "runs": summary_runs, "checks": checks, "dtype": args.dtype,
    }
    with open(os.path.join(root, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
        fh.write("\n")
    print(json.dumps(checks, indent=1))
    print("wrote", root)


if __name__ == "__main__":
    main()
