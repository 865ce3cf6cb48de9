"""An independent PyTorch implementation of Harmony on ELITE (docs/elite.md B.3 with the
resolutions of B.4), built on ELITE's own functions. Makes nothing; make_elite_harmony.py drives it.

  placeholder_index(prompt, ph)       ELITE's word-split rule (datasets.py:125-131)
  encode(...)                         ELITE's inj_forward_text with w0 injected at the index
  text_rows(ids, s, ...)              B.4.2: text rows T of the main prompt
  orthogonalize(E, T, s, mode)        float64 column-pivoted QR of Tᵀ, row s := v − λ·Q·Qᵀ·v (B.3.3, B.4.3)
  choose_layers(unet, lat_hw)         mask layers (attn2) and swap layers (attn1) by the level rule (B.4.6)
  HarmonyCall                         the CrossAttention.__call__ installed during a Harmony UNet call:
      attn2, batch 4 [uncond-main, uncond-vis, cond-main, cond-vis]: ELITE's
          train_local.inj_forward_crossattention on each row alone: uncond rows with the global
          K/V only, conditional rows with their own E, L, LOCAL_INDEX, λ: ELITE's batch-1 result,
          hence the per-process max of M (B.4.4); the S* column of the global probabilities P of the
          conditional rows is recorded in the mask layers (recomputed with ELITE's own operations);
      attn1: ELITE's function on all four rows; in a swap layer while swapping, ELITE's attn1 lines
          (matmul, then · scale, softmax, matmul) with the `kv` or `map` swap applied to the
          attention output of rows 0 and 2 before to_out (B.4.8-10).
  masks_from_maps(...)                mean over heads (float64) → area mean to the grid → mean over
                                      layers → min–max → > τ (B.3.7, B.4.5, B.4.7)
  run(...)                            two LMS processes side by side, one batch-4 UNet call per step
"""

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

import train_local

RANK_RTOL = 1e-6
BOS, EOS = 49406, 49407


def placeholder_index(prompt, ph):
    """ELITE's rule: index of the last space-split word equal to ph, + 1 (BOS); 0 if absent."""
    idx = 0
    for i, word in enumerate(prompt.strip().split(" ")):
        if word == ph:
            idx = i + 1
    return idx


def tokenize(tokenizer, prompt):
    return tokenizer(prompt, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                     return_tensors="pt").input_ids


def encode(text_encoder, ids, w0=None, index=None):
    """ELITE's patched text encoder (inj_forward_text): w0 [B,1,D] injected at index [B]."""
    arg = {"input_ids": ids}
    if w0 is not None:
        arg["inj_embedding"] = w0
        arg["inj_index"] = index
    return text_encoder(arg)[0]


def find_seq(ids, seq):
    out = []
    for s in range(len(ids) - len(seq) + 1):
        if ids[s:s + len(seq)] == seq:
            out.extend(range(s, s + len(seq)))
    return sorted(set(out))


def text_rows(ids, s, ph_ids, class_ids=None, exclude_class=True):
    """B.4.2: all rows except BOS/EOS/pad, row s, further occurrences of the placeholder's token
    sequence, and (with a class word and exclude_class) the class rows."""
    ids = [int(x) for x in ids]
    drop = {i for i, t in enumerate(ids) if t in (BOS, EOS)}
    drop.add(s)
    drop.update(find_seq(ids, list(ph_ids)))
    klass = find_seq(ids, list(class_ids)) if class_ids else []
    if exclude_class:
        drop.update(klass)
    return [i for i in range(len(ids)) if i not in drop], klass


def orthogonalize(E, T, s, mode="full", rtol=RANK_RTOL):
    """E [77, D]: row s := v − λ·Q·Qᵀ·v with Q from the float64 column-pivoted QR of E[T]ᵀ."""
    out = E.clone()
    if not T:
        return out, {"rank": 0, "lam": 0.0, "Q": np.zeros((E.shape[1], 0)), "diag": np.zeros(0)}
    T64 = E[T].double().numpy()
    Q, R, _ = scipy.linalg.qr(T64.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    r = 0
    while r < len(diag) and diag[r] >= rtol * diag[0]:
        r += 1
    Q = Q[:, :r]
    lam = 1.0 if mode == "full" else (1.0 / r if mode == "mean" else float(mode))
    v = E[s].double().numpy()
    vp = v - lam * (Q @ (Q.T @ v))
    out[s] = torch.from_numpy(vp).to(E.dtype)
    return out, {"rank": r, "lam": lam, "Q": Q, "diag": diag}


def unet_layout(unet, lat_hw):
    """Transformer layers: name -> (level, (h, w)); a level halves with each downsampling
    (ceil, as a stride-2 pad-1 conv does)."""
    n = len(unet.config.block_out_channels)

    def hw(lvl):
        h, w = lat_hw
        for _ in range(lvl):
            h, w = (h + 1) // 2, (w + 1) // 2
        return (h, w)

    layers = {}
    for i, blk in enumerate(unet.down_blocks):
        for j, _ in enumerate(getattr(blk, "attentions", None) or []):
            layers[f"down_blocks.{i}.attentions.{j}"] = (i, hw(i))
    for j, _ in enumerate(getattr(unet.mid_block, "attentions", None) or []):
        layers[f"mid_block.attentions.{j}"] = (n - 1, hw(n - 1))
    for i, blk in enumerate(unet.up_blocks):
        lvl = n - 1 - i
        for j, _ in enumerate(getattr(blk, "attentions", None) or []):
            layers[f"up_blocks.{i}.attentions.{j}"] = (lvl, hw(lvl))
    return layers


def choose_layers(unet, lat_hw):
    """B.4.6: Lm = the coarsest level with attention in a down or up block; mask layers = attn2 of
    the down/up layers at Lm and Lm − 1 (the mid block never); swap layers = attn1 of every up
    block layer."""
    layers = unet_layout(unet, lat_hw)
    blk = {k: v for k, v in layers.items() if not k.startswith("mid_block")}
    lm = max(v[0] for v in blk.values())
    mask_layers = [k for k, v in blk.items() if k.startswith("down_blocks") and v[0] in (lm, lm - 1)]
    mask_layers += [k for k, v in blk.items() if k.startswith("up_blocks") and v[0] in (lm, lm - 1)]
    swap_layers = [k for k in blk if k.startswith("up_blocks")]
    return layers, lm, mask_layers, swap_layers


def nearest(mask, h, w):
    H, W = mask.shape
    ys = [(y * H) // h for y in range(h)]
    xs = [(x * W) // w for x in range(w)]
    return mask[ys][:, xs]


def area_resize(m, h, w):
    """Adaptive-average-pool bins [floor(i·Hin/Hout), ceil((i+1)·Hin/Hout)) per axis (B.4.7)."""
    return F.adaptive_avg_pool2d(m[None, None], (h, w))[0, 0]


class State:
    def __init__(self, layers, mask_layers, swap_layers, cols, swap_mode="kv"):
        self.layers = layers
        self.mask_layers = set(mask_layers)
        self.swap_layers = set(swap_layers)
        self.cols = cols  # {"main": [s_main (+ class cols)], "vis": [s_vis (+ class cols)]}
        self.swap_mode = swap_mode
        self.swap_now = False
        self.masks = None  # {"main": bool [gh, gw], "vis": ...} used by this call
        self.maps = {}  # layer -> {"main": [HW] f64, "vis": [HW] f64}
        self.names = {}  # module id -> layer name
        self.empty_vis_skips = 0


def _elite_attn_core(self, hidden_states):
    """ELITE's self-attention lines (inj_forward_crossattention with no context) up to the
    attention output before to_out; returns (q, k, v, probs, out) in [B·H, N, d] layout."""
    query = self.reshape_heads_to_batch_dim(self.to_q(hidden_states))
    key = self.reshape_heads_to_batch_dim(self.to_k(hidden_states))
    value = self.reshape_heads_to_batch_dim(self.to_v(hidden_states))
    scores = torch.matmul(query, key.transpose(-1, -2))
    scores = scores * self.scale
    probs = scores.softmax(dim=-1)
    return query, key, value, probs, torch.matmul(probs, value)


def make_call(state):
    def harmony_call(self, hidden_states, encoder_hidden_states=None, attention_mask=None):
        name = state.names.get(id(self))
        ctx = encoder_hidden_states
        if ctx is None:  # attn1
            if not (state.swap_now and name in state.swap_layers and state.masks is not None):
                return train_local.inj_forward_crossattention(self, hidden_states)
            return _swapped_attn1(self, state, name, hidden_states)
        # attn2, batch 4
        E = ctx["E"]  # [4, 77, D]
        # every row as ELITE's batch of one: the uncond rows with the global K/V only
        outs = [train_local.inj_forward_crossattention(self, hidden_states[b:b + 1], {"CONTEXT_TENSOR": E[b:b + 1]})
                for b in (0, 1)]
        for b, proc in ((2, "main"), (3, "vis")):
            c = {"CONTEXT_TENSOR": E[b:b + 1], "LOCAL": ctx["LOCAL"], "LOCAL_INDEX": ctx["INDEX"][proc], "LAMBDA": ctx["LAMBDA"]}
            if ctx["LAMBDA"] is None:
                c = {"CONTEXT_TENSOR": E[b:b + 1]}  # global-only ELITE
            outs.append(train_local.inj_forward_crossattention(self, hidden_states[b:b + 1], c))
        if name in state.mask_layers:
            rec = {}
            for b, proc in ((2, "main"), (3, "vis")):
                q = self.reshape_heads_to_batch_dim(self.to_q(hidden_states[b:b + 1]))
                k = self.reshape_heads_to_batch_dim(self.to_k_global(E[b:b + 1]))
                probs = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1)  # [H, N, 77]
                m = probs[:, :, state.cols[proc]].double().mean(dim=-1)  # over the subject columns
                rec[proc] = m.mean(dim=0)  # over heads
            state.maps[name] = rec
        return torch.cat(outs, dim=0)

    return harmony_call


def _swapped_attn1(self, state, name, hidden_states):
    h = self.heads
    hgt, wid = state.layers[name][1]
    q, k, v, probs, out = _elite_attn_core(self, hidden_states)
    m_main = nearest(state.masks["main"], hgt, wid).reshape(-1)
    m_vis = nearest(state.masks["vis"], hgt, wid).reshape(-1)
    rows = m_main.nonzero().flatten()
    skip = rows.numel() == 0 or (state.swap_mode == "kv" and not bool(m_vis.any()))
    if state.swap_mode == "kv" and not bool(m_vis.any()):
        state.empty_vis_skips += 1
    if not skip:
        out = out.clone()
        for bm, bv in ((0, 1), (2, 3)):
            sm, sv = slice(bm * h, (bm + 1) * h), slice(bv * h, (bv + 1) * h)
            if state.swap_mode == "kv":
                s = torch.matmul(q[sm], k[sv].transpose(-1, -2))
                s = s * self.scale
                s = s.masked_fill(~m_vis[None, None, :], float("-inf"))
                o = torch.matmul(s.softmax(dim=-1), v[sv])
            else:
                o = torch.matmul(probs[sv], v[sm])
            out[sm, rows] = o[:, rows]
    out = self.reshape_batch_dim_to_heads(out)
    out = self.to_out[0](out)
    return self.to_out[1](out)


def masks_from_maps(maps, mask_layers, layers, grid, proc, tau):
    gh, gw = grid
    acc = []
    for name in mask_layers:
        lh, lw = layers[name][1]
        m = maps[name][proc].reshape(lh, lw)
        if (lh, lw) != (gh, gw):
            m = area_resize(m, gh, gw)
        acc.append(m)
    raw = torch.stack(acc).mean(dim=0)
    lo, hi = raw.min(), raw.max()
    norm = (raw - lo) / (hi - lo) if hi > lo else torch.zeros_like(raw)
    return raw, norm, norm > tau


def install(unet, state):
    from diffusers.models.attention import CrossAttention

    for name, mod in unet.named_modules():
        if isinstance(mod, CrossAttention):
            state.names[id(mod)] = name.split(".transformer_blocks")[0]
    prev = CrossAttention.__call__
    CrossAttention.__call__ = make_call(state)
    return lambda: setattr(CrossAttention, "__call__", prev)


def run(unet, scheduler_cls, E4, L, index, lam, latents0, steps, guidance, opts, grid, layers, mask_layers,
        swap_layers, cols, record=None):
    """Both processes: E4 [4,77,D] = [E_u, E_u, E_main(⊥), E_vis]; index {"main": [1], "vis": [1]}.
    Returns per-call records and each process's final latents."""
    sched = {p: scheduler_cls(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
             for p in ("main", "vis")}
    for s in sched.values():
        s.set_timesteps(steps)
    lat = {p: latents0 * sched[p].init_noise_sigma for p in ("main", "vis")}
    state = State(layers, mask_layers, swap_layers, cols, opts["swap_mode"])
    start = int(math.floor(opts["swap_start"] * steps + 1e-9)) if isinstance(opts["swap_start"], float) else int(opts["swap_start"])
    restore = install(unet, state)
    calls = []
    try:
        prev_masks = None
        for i, t in enumerate(sched["main"].timesteps):
            state.swap_now = opts["swap"] and i >= max(start, 1) and prev_masks is not None
            forced = (opts.get("force_masks") or {}).get(i)
            state.masks = (forced if forced is not None else prev_masks) if state.swap_now else None
            state.maps = {}
            xin = {p: sched[p].scale_model_input(lat[p], t) for p in ("main", "vis")}
            x4 = torch.cat([xin["main"], xin["vis"], xin["main"], xin["vis"]], dim=0)
            ctx = {"E": E4, "LOCAL": L, "INDEX": index, "LAMBDA": lam}
            eps4 = unet(x4, t, encoder_hidden_states=ctx).sample
            train_local.value_local_list.clear()  # ELITE's function appends to it; validation clears it too
            rec = {"t": float(t), "x4": x4, "eps4": eps4, "masks_used": state.masks, "swapped": state.swap_now,
                   "lat_in": {p: lat[p].clone() for p in lat}}
            new = {}
            for p in ("main", "vis"):
                raw, norm, binm = masks_from_maps(state.maps, mask_layers, layers, grid, p, opts["tau"])
                new[p] = binm
                rec[f"mask_raw_{p}"], rec[f"mask_norm_{p}"], rec[f"mask_{p}"] = raw, norm, binm
            eps = {}
            for b_u, b_c, p in ((0, 2, "main"), (1, 3, "vis")):
                eu, ec = eps4[b_u:b_u + 1], eps4[b_c:b_c + 1]
                eps[p] = eu + guidance * (ec - eu)
                lat[p] = sched[p].step(eps[p], t, lat[p]).prev_sample
            rec["eps"] = eps
            rec["lat_out"] = {p: lat[p].clone() for p in lat}
            calls.append(rec)
            prev_masks = new
    finally:
        restore()
    return calls, lat, state
