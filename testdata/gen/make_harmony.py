"""Computes the Harmony goldens with an independent PyTorch implementation of the method
(harmony_method.py, following docs/harmony-method.md) on top of the reference
BlipDiffusionPipeline (diffusers v0.25.1).

Reads OUT/blipdiffusion-tiny, OUT/inputs and OUT/golden/g_pipeline.safetensors (pipe.init_latents)
and makes, under OUT/harmony:
  ortho.safetensors         E, E_perp.{full,mean,lambda0.5}, ids61, row sets, pivots, rank for the
                            pipeline prompt (20 repetitions), `reps1.*` (1 repetition), `synth.*`
                            (a constructed rank case), E_vis / ids61_vis (visual-only process)
  runs/<run>.safetensors    per run (see RUNS): timesteps, text_embeddings, latents, UNet outputs,
                            guided noise, images, and for swap runs the masks per UNet call
  runs/<run>_main.png, <run>_vis.png, <run>_mask_last_main.png
  summary.json              options, layer sets, mask pixel counts, threshold margins, ortho checks

Usage:
  HARMONY_REFSRC=/path/refsrc /usr/bin/python3 make_harmony.py --out OUT
"""

import argparse
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

PRODUCER = "heldout/gen_harmony.py"  # the producer name the Harmony goldens carry (kept for byte-identity)

PROMPT = "swimming underwater"
SUBJECT = "dog"
NEG_PROMPT = (
    "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, "
    "low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, "
    "deformed, blurry, duplicate"
)
GUIDANCE, HEIGHT, WIDTH, STEPS = 7.5, 32, 48, 8
PROMPT_STRENGTH = 1.0
IMG1 = "reference_96x64.png"

# run name -> (option overrides, prompt_reps)
RUNS = {
    "baseline": ({"ortho": False, "swap": False}, 20),
    "ortho_full": ({"ortho": True, "swap": False}, 20),
    "ortho_mean": ({"ortho": True, "ortho_mode": "mean", "swap": False}, 20),
    "ortho_lambda0.5": ({"ortho": True, "ortho_mode": 0.5, "swap": False}, 20),
    "swap_kv": ({"ortho": False, "swap": True}, 20),
    "ortho_swap_kv": ({"ortho": True, "swap": True}, 20),
    "ortho_swap_map": ({"ortho": True, "swap": True, "swap_mode": "map"}, 20),
    "reps1_ortho_full": ({"ortho": True, "swap": False}, 1),
    "reps1_ortho_swap_kv": ({"ortho": True, "swap": True}, 1),
}


def to_images(pipe, latents):
    img = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    f = pipe.image_processor.postprocess(img, output_type="np")
    pil = pipe.image_processor.postprocess(img, output_type="pil")[0]
    return torch.from_numpy(np.ascontiguousarray(f)), torch.from_numpy(np.array(pil)), pil


class Harmony:
    """Everything one run needs that does not depend on the options."""

    def __init__(self, pipe, image, init_latents):
        import harmony_method as H

        self.H, self.pipe = H, pipe
        self.init_latents = init_latents
        tok = pipe.tokenizer
        self.special = {tok.bos_token_id, tok.eos_token_id}
        self.eos = tok.eos_token_id
        self.class_ids = tok(SUBJECT, add_special_tokens=False).input_ids
        pixel_values = pipe.image_processor.preprocess(
            image, image_mean=pipe.config.mean, image_std=pipe.config.std, return_tensors="pt"
        )["pixel_values"]
        self.query_embeds = pipe.get_query_embeddings(pixel_values, [SUBJECT])
        ids = tok([NEG_PROMPT], padding="max_length", max_length=77, return_tensors="pt").input_ids
        self.uncond = pipe.text_encoder(input_ids=ids, ctx_embeddings=None)[0]

    def ids61(self, text):
        return self.pipe.tokenizer(
            [text], padding="max_length", truncation=True, max_length=61, return_tensors="pt"
        ).input_ids

    def cond(self, ids):
        pos = [self.pipe.config.ctx_begin_pos]
        return self.pipe.text_encoder(input_ids=ids, ctx_embeddings=self.query_embeds, ctx_begin_pos=pos)[0]

    def main_embedding(self, reps, opts):
        built = self.pipe._build_prompt([PROMPT], [SUBJECT], PROMPT_STRENGTH, reps)[0]
        ids = self.ids61(built)
        E = self.cond(ids)
        rows = self.H.classify_rows(ids[0].tolist(), self.class_ids, self.special, self.eos, exclude_class=opts["ortho_exclude_class"])
        info = None
        if opts["ortho"]:
            Ep, info = self.H.orthogonalize(E[0], rows, opts["ortho_mode"], opts["rank_rtol"])
            E = Ep[None]
        return built, ids, E, rows, info

    def run(self, opts, reps):
        H, pipe = self.H, self.pipe
        built, ids, E_main, rows, info = self.main_embedding(reps, opts)
        vis_text = opts["visual_prompt"].replace("{class}", SUBJECT)
        ids_vis = self.ids61(vis_text)
        E_vis = self.cond(ids_vis)
        swap = opts["swap"]
        lat_hw = (HEIGHT // 2 ** (len(pipe.unet.config.block_out_channels) - 1), WIDTH // 2 ** (len(pipe.unet.config.block_out_channels) - 1))
        layers, lm, mask_layers, swap_layers = H.choose_layers(pipe.unet, lat_hw, opts["mask_level"])
        cols = list(range(pipe.config.ctx_begin_pos, pipe.config.ctx_begin_pos + pipe.qformer.config.num_query_tokens))
        state = H.HarmonyState(mask_layers, swap_layers, {"main": cols, "vis": cols}, opts["swap_mode"], batch4=swap)
        H.install_processors(pipe.unet, state, layers)
        if swap:
            text_embeddings = torch.cat([self.uncond, self.uncond, E_main, E_vis])
        else:
            text_embeddings = torch.cat([self.uncond, E_main])

        sched_main = copy.deepcopy(pipe.scheduler)
        sched_vis = copy.deepcopy(pipe.scheduler)
        sched_main.set_timesteps(STEPS)
        sched_vis.set_timesteps(STEPS)
        lat_main = self.init_latents * sched_main.init_noise_sigma
        lat_vis = lat_main.clone()
        start = max(H.swap_start_index(opts["swap_start"], STEPS), 1)
        grid = layers[mask_layers[0]][1]
        R = {k: [] for k in ("t", "lmi", "lmo", "lvi", "lvo", "uo", "npm", "npv", "raw_m", "raw_v", "norm_m", "norm_v", "m_m", "m_v", "mu_m", "mu_v", "active")}
        prev = None
        for i, t in enumerate(sched_main.timesteps):
            state.swap_now = swap and i >= start and prev is not None
            state.masks = prev if state.swap_now else None
            state.maps = {}
            if swap:
                inp = torch.cat([lat_main, lat_vis, lat_main, lat_vis])
            else:
                inp = torch.cat([lat_main] * 2)
            out = pipe.unet(inp, timestep=t, encoder_hidden_states=text_embeddings)["sample"]
            R["t"].append(int(t))
            R["uo"].append(out)
            if swap:
                u_m, u_v, c_m, c_v = out.chunk(4)
                n_m = u_m + GUIDANCE * (c_m - u_m)
                n_v = u_v + GUIDANCE * (c_v - u_v)
            else:
                u_m, c_m = out.chunk(2)
                n_m = u_m + GUIDANCE * (c_m - u_m)
            R["lmi"].append(lat_main)
            R["npm"].append(n_m)
            lat_main = sched_main.step(n_m, t, lat_main)["prev_sample"]
            R["lmo"].append(lat_main)
            if swap:
                R["lvi"].append(lat_vis)
                R["npv"].append(n_v)
                lat_vis = sched_vis.step(n_v, t, lat_vis)["prev_sample"]
                R["lvo"].append(lat_vis)
                raw_m, norm_m = H.mask_from_maps(state.maps, mask_layers, grid, {k: v[1] for k, v in layers.items()}, "main")
                raw_v, norm_v = H.mask_from_maps(state.maps, mask_layers, grid, {k: v[1] for k, v in layers.items()}, "vis")
                tau = opts["mask_threshold"]
                m_m, m_v = norm_m > tau, norm_v > tau
                R["raw_m"].append(raw_m.float())
                R["raw_v"].append(raw_v.float())
                R["norm_m"].append(norm_m.float())
                R["norm_v"].append(norm_v.float())
                R.setdefault("norm64_m", []).append(norm_m)
                R.setdefault("norm64_v", []).append(norm_v)
                R["m_m"].append(m_m)
                R["m_v"].append(m_v)
                used = state.masks if state.swap_now else {"main": torch.zeros_like(m_m), "vis": torch.zeros_like(m_v)}
                R["mu_m"].append(used["main"])
                R["mu_v"].append(used["vis"])
                R["active"].append(int(state.swap_now))
                prev = {"main": m_m, "vis": m_v}
        from diffusers.models.attention_processor import AttnProcessor

        pipe.unet.set_attn_processor(AttnProcessor())

        T = {"timesteps": torch.tensor(R["t"], dtype=torch.int64), "text_embeddings": text_embeddings}
        T["latents_main_in"] = torch.cat(R["lmi"])
        T["latents_main_out"] = torch.cat(R["lmo"])
        T["unet_out"] = torch.stack(R["uo"])
        T["noise_pred_main"] = torch.cat(R["npm"])
        T["image_main_float"], T["image_main_uint8"], pil_main = to_images(pipe, lat_main)
        pngs = {"main": pil_main}
        if swap:
            T["latents_vis_in"] = torch.cat(R["lvi"])
            T["latents_vis_out"] = torch.cat(R["lvo"])
            T["noise_pred_vis"] = torch.cat(R["npv"])
            T["image_vis_float"], T["image_vis_uint8"], pngs["vis"] = to_images(pipe, lat_vis)
            for key, name in (("raw", "mask_raw"), ("norm", "mask_norm")):
                T[name + "_main"] = torch.stack(R[key + "_m"])
                T[name + "_vis"] = torch.stack(R[key + "_v"])
            T["mask_main"] = torch.stack(R["m_m"]).to(torch.uint8)
            T["mask_vis"] = torch.stack(R["m_v"]).to(torch.uint8)
            T["mask_used_main"] = torch.stack(R["mu_m"]).to(torch.uint8)
            T["mask_used_vis"] = torch.stack(R["mu_v"]).to(torch.uint8)
            T["swap_active"] = torch.tensor(R["active"], dtype=torch.uint8)
            last = max(i for i, a in enumerate(R["active"]) if a)
            soft = R["norm_m"][last - 1]
            pngs["mask_last_main"] = soft_mask_png(soft, (WIDTH * 4, HEIGHT * 4))
        meta = dict(built=built, ids=ids, rows=rows, info=info, ids_vis=ids_vis, E_vis=E_vis, layers=layers, lm=lm,
                    mask_layers=mask_layers, swap_layers=swap_layers, start=start, grid=grid, state=state, R=R)
        return T, pngs, meta


def soft_mask_png(soft, size):
    from PIL import Image

    a = (soft.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(a, "L").resize(size, Image.NEAREST)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of the runs")
    ap.add_argument("--refsrc", help="overrides $HARMONY_REFSRC")
    args = ap.parse_args()
    refenv.bert_cache(os.path.join(args.out, "qformer_bert_tokenizer", "vocab.txt"))
    refenv.apply_tokenizer_shim()
    import diffusers
    from diffusers import BlipDiffusionPipeline
    from PIL import Image

    import harmony_method as H
    import safetensors_io

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    pipe = BlipDiffusionPipeline.from_pretrained(os.path.join(args.out, "blipdiffusion-tiny"))
    init = safetensors_io.load(os.path.join(args.out, "golden", "g_pipeline.safetensors"))["pipe.init_latents"]
    hdir = os.path.join(args.out, "harmony")
    rdir = os.path.join(hdir, "runs")
    os.makedirs(rdir, exist_ok=True)
    meta_of = {}
    with torch.no_grad():
        hm = Harmony(pipe, Image.open(os.path.join(args.out, "inputs", IMG1)), init)
        for name in args.runs.split(","):
            over, reps = RUNS[name]
            opts = dict(H.DEFAULT_OPTIONS, **over)
            print("run", name, flush=True)
            T, pngs, meta = hm.run(opts, reps)
            meta_of[name] = (opts, reps, meta)
            safetensors_io.save(T, os.path.join(rdir, name + ".safetensors"), metadata={"format": "pt", "producer": PRODUCER})
            for k, im in pngs.items():
                im.save(os.path.join(rdir, f"{name}_{k}.png"))
        ortho_summary = write_ortho(hm, hdir)
        summary = build_summary(hm, meta_of, ortho_summary)
    with open(os.path.join(hdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("wrote", hdir)


def synth_embedding():
    """The constructed rank case: exact dependencies, a 1e-4-scaled row (kept), a 1e-8-scaled row (dropped)."""
    B = torch.randint(-96, 97, (77, 32), generator=torch.Generator().manual_seed(4242)).float() / 64
    E = B.clone()
    E[23] = B[18] + B[19]
    E[24] = 0.5 * B[20] - 2 * B[21]
    E[25] = B[18] + B[22]
    E[26] = B[26] * 1e-4
    E[27] = B[27] * 1e-8
    E[28] = B[18]
    E[29] = -3 * B[19]
    rows = {"visual": list(range(2, 18)), "text_used": [1] + list(range(18, 30))}
    return E, rows


def ortho_checks(E, rows, mode, H):
    """Checks of one orthogonalization (summary.json "ortho")."""
    Ep, info = H.orthogonalize(E, rows, mode)
    Q, lam = info["Q"], info["lam"]
    V = E[rows["visual"]].double().numpy()
    Vp64 = V - lam * ((V @ Q) @ Q.T)
    Vp32 = Ep[rows["visual"]].double().numpy()
    vnorm = np.linalg.norm(V, axis=1)
    T64 = E[rows["text_used"]].double().numpy()
    Qm = H.mgs_basis(T64)
    Ep_mgs = H.project(E, rows["visual"], Qm, H.ortho_lambda(mode, Qm.shape[1]))
    others = [r for r in range(E.shape[0]) if r not in rows["visual"]]
    return Ep, info, {
        "rank": info["rank"],
        "lam": lam,
        "max_QtVperp_over_V_fp64": float(np.max(np.linalg.norm(Vp64 @ Q, axis=1) / vnorm)),
        "max_QtVperp_over_V_fp32": float(np.max(np.linalg.norm(Vp32 @ Q, axis=1) / vnorm)),
        "visual_rows_norm_ratio": float(np.linalg.norm(Vp32) / np.linalg.norm(V)),
        "mgs_rank": int(Qm.shape[1]),
        "mgs_vs_householder_max_abs": float((Ep_mgs.double() - Ep.double()).abs().max()),
        "other_rows_bit_identical": bool(torch.equal(Ep[others], E[others])),
    }


def write_ortho(hm, hdir):
    """ortho.safetensors; returns the "ortho" part of summary.json."""
    import harmony_method as H
    import safetensors_io

    opts = dict(H.DEFAULT_OPTIONS)
    out = {}
    summ = {}
    for prefix, reps in (("", 20), ("reps1.", 1)):
        built, ids, E, rows, _ = hm.main_embedding(reps, dict(opts, ortho=False))
        E = E[0]
        sec = summ.setdefault(prefix or "reps20", {})
        out[prefix + "E"] = E
        out[prefix + "ids61"] = ids[0]
        for k, key in (("visual", "visual"), ("text", "text"), ("klass", "class"), ("special", "special"), ("text_used", "text_used")):
            out[prefix + "rows." + key] = torch.tensor(rows[k], dtype=torch.int64)
        for mode, key in (("full", "full"), ("mean", "mean"), (0.5, "lambda0.5")):
            Ep, info, sec[key] = ortho_checks(E, rows, mode, H)
            out[prefix + "E_perp." + key] = Ep
        empty, _ = H.orthogonalize(E, dict(rows, text_used=[]), "full")
        sec["empty_T_bit_identical"] = bool(torch.equal(empty, E))
        piv32 = torch.from_numpy(info["pivots"]).float()
        r = info["rank"]
        sec["pivot_gap"] = [float(piv32[r - 2]), float(piv32[r - 1])]
        out[prefix + "pivots"] = piv32
        out[prefix + "rank"] = torch.tensor([info["rank"]], dtype=torch.int64)
    Es, rs = synth_embedding()
    out["synth.E"] = Es
    out["synth.rows.visual"] = torch.tensor(rs["visual"], dtype=torch.int64)
    out["synth.rows.text_used"] = torch.tensor(rs["text_used"], dtype=torch.int64)
    syn = summ["synthetic"] = {}
    for mode, key in (("full", "full"), ("mean", "mean"), (0.5, "lambda0.5")):
        Ep, info, chk = ortho_checks(Es, rs, mode, H)
        syn[key] = {k: chk[k] for k in ("rank", "mgs_rank", "mgs_vs_householder_max_abs", "max_QtVperp_over_V_fp64")}
        if key == "full":
            syn["pivots_over_largest"] = [float(x) for x in info["pivots"] / info["pivots"][0]]
            syn["pivot_order_rows"] = [rs["text_used"][int(p)] for p in info["perm"]]
        out["synth.E_perp." + key] = Ep
    out["synth.pivots"] = torch.from_numpy(info["pivots"]).float()
    out["synth.rank"] = torch.tensor([info["rank"]], dtype=torch.int64)
    ids_vis = hm.ids61(H.DEFAULT_OPTIONS["visual_prompt"].replace("{class}", SUBJECT))
    out["ids61_vis"] = ids_vis[0]
    out["E_vis"] = hm.cond(ids_vis)[0]
    safetensors_io.save(out, os.path.join(hdir, "ortho.safetensors"), metadata={"format": "pt", "producer": PRODUCER})
    return summ


def margin(norms, tau):
    d = torch.stack(norms).sub(tau).abs()
    flat = d.reshape(d.shape[0], -1)
    return {
        "min": float(d.min()),
        "argmin_step": int(flat.min(dim=1).values.argmin()),
        "n_below_1e_5": int((d < 1e-5).sum()),
        "n_below_1e_4": int((d < 1e-4).sum()),
        "n_below_1e_3": int((d < 1e-3).sum()),
        "n_total": d.numel(),
    }


def rows_json(rows):
    return {k: rows[k] for k in ("visual", "special", "klass", "text")}


def build_summary(hm, meta_of, ortho_summary):
    """summary.json: arguments, per-run options and layer/mask statistics, ortho checks, rows."""
    import harmony_method as H

    runs = {}
    for name, (opts, reps, m) in meta_of.items():
        e = {"options": opts, "prompt_reps": reps, "built_prompt": m["built"]}
        if opts["swap"]:
            R, st = m["R"], m["state"]
            tau = opts["mask_threshold"]
            mm, mv = margin(R["norm64_m"], tau), margin(R["norm64_v"], tau)
            ids_vis = m["ids_vis"][0].tolist()
            e.update(
                {
                    "mask_layers": m["mask_layers"],
                    "swap_layers": m["swap_layers"],
                    "mask_level": m["lm"],
                    "layer_hw": {k: list(v[1]) for k, v in m["layers"].items()},
                    "swap_start_index": H.swap_start_index(opts["swap_start"], STEPS),
                    "swap_active": R["active"],
                    "mask_pixels_main": [int(x.sum()) for x in R["m_m"]],
                    "mask_pixels_vis": [int(x.sum()) for x in R["m_v"]],
                    "mask_grid": list(m["grid"]),
                    "threshold_margin_min": min(mm["min"], mv["min"]),
                    "threshold_margin": {"main": mm, "vis": mv},
                    "empty_vis_skips": st.empty_vis_skips,
                    "visual_prompt": opts["visual_prompt"].replace("{class}", SUBJECT),
                    "ids61_vis": ids_vis,
                    "rows_vis": rows_json(H.classify_rows(ids_vis, hm.class_ids, hm.special, hm.eos)),
                }
            )
        if opts["ortho"]:
            e.update({"ortho_rank": m["info"]["rank"], "ortho_lambda": m["info"]["lam"], "n_text_rows": len(m["rows"]["text_used"])})
        runs[name] = e
    rows20 = hm.main_embedding(20, dict(H.DEFAULT_OPTIONS, ortho=False))[3]
    rows1 = hm.main_embedding(1, dict(H.DEFAULT_OPTIONS, ortho=False))[3]
    return {
        "args": {
            "prompt": PROMPT,
            "source_subject_category": SUBJECT,
            "target_subject_category": SUBJECT,
            "guidance_scale": GUIDANCE,
            "height": HEIGHT,
            "width": WIDTH,
            "num_inference_steps": STEPS,
            "neg_prompt": NEG_PROMPT,
            "prompt_strength": PROMPT_STRENGTH,
            "prompt_reps": 20,
        },
        "model_path": "blipdiffusion-tiny",
        "image": "inputs/" + IMG1,
        "init_latents": ["golden/g_pipeline.safetensors", "pipe.init_latents"],
        "runs": runs,
        "ortho": ortho_summary,
        "rows": rows_json(rows20),
        "rows_reps1": rows_json(rows1),
        "class_ids": hm.class_ids,
    }


if __name__ == "__main__":
    main()
