"""An independent PyTorch implementation of the Harmony method (docs/harmony-method.md) on top of
diffusers' BlipDiffusionPipeline. Makes nothing; make_harmony.py drives it.

  classify_rows(ids61, ...)          visual / special / class / text rows of the 77-row embedding (section 2)
  orthogonalize(E, rows, mode)       column-pivoted Householder QR of T^T (float64) and v - lam*Q*Q^T*v
  mgs_projector(...)                 the modified Gram-Schmidt cross-check
  HarmonyState / HarmonyAttnProcessor   attention processors: they compute exactly what diffusers'
                                     AttnProcessor computes, record the cross-attention
                                     probabilities of the mask layers, and do the masked
                                     self-attention swap (`kv` or `map` mode) in the swap layers
  run_harmony(pipe, ...)             the two denoising processes side by side (batch 4 when swapping,
                                     the plain batch-2 path otherwise)
"""

import math

import numpy as np
import scipy.linalg
import torch

RANK_RTOL = 1e-6


# ---------------------------------------------------------------------------------------------
# section 2: orthogonal visual embedding
def row_of_token(j, ctx_begin_pos, n_query):
    return j if j < ctx_begin_pos else j + n_query


def find_class_tokens(ids, class_ids, eos_id):
    """Token positions of every whole occurrence of class_ids in ids, plus a prefix of it cut off
    by truncation right before the final EOS."""
    ids = list(ids)
    n, m = len(ids), len(class_ids)
    pos = set()
    for s in range(n):
        if ids[s : s + m] == list(class_ids):
            pos.update(range(s, s + m))
    # truncated prefix right before the final EOS
    if ids and ids[-1] == eos_id:
        end = n - 1
        for k in range(m - 1, 0, -1):
            s = end - k
            if s >= 0 and ids[s:end] == list(class_ids[:k]) and not set(range(s, end)) <= pos:
                pos.update(range(s, end))
                break
    return sorted(pos)


def classify_rows(ids61, class_ids, special_ids, eos_id, ctx_begin_pos=2, n_query=16, exclude_class=True):
    """Rows of the 77-row conditional embedding: visual, special, class ('klass'), text."""
    n_rows = len(ids61) + n_query
    visual = list(range(ctx_begin_pos, ctx_begin_pos + n_query))
    special = sorted(row_of_token(j, ctx_begin_pos, n_query) for j, t in enumerate(ids61) if int(t) in special_ids)
    klass = sorted(row_of_token(j, ctx_begin_pos, n_query) for j in find_class_tokens([int(t) for t in ids61], class_ids, eos_id))
    klass = [r for r in klass if r not in special]
    taken = set(visual) | set(special) | (set(klass) if exclude_class else set())
    text = [r for r in range(n_rows) if r not in taken and r not in klass]
    text_used = [r for r in range(n_rows) if r not in taken]
    return {"visual": visual, "special": special, "klass": klass, "text": text, "text_used": text_used}


def householder_basis(T64, rtol=RANK_RTOL):
    """Column-pivoted Householder QR (LAPACK dgeqp3) of T^T. Returns Q[:, :r], r, |R_kk|, pivot order."""
    D, n = T64.shape[1], T64.shape[0]
    if n == 0:
        return np.zeros((D, 0)), 0, np.zeros(0), np.zeros(0, dtype=np.int64)
    Q, R, P = scipy.linalg.qr(T64.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    r = 0
    while r < len(diag) and diag[r] >= rtol * diag[0]:
        r += 1
    return Q[:, :r], r, diag, P


def mgs_basis(T64, rtol=RANK_RTOL):
    """Modified Gram-Schmidt over the rows in order, re-orthogonalized; keeps a row when its
    residual norm is >= rtol * the largest row norm."""
    if T64.shape[0] == 0:
        return np.zeros((T64.shape[1], 0))
    tol = rtol * np.max(np.linalg.norm(T64, axis=1))
    basis = []
    for row in T64:
        v = row.copy()
        for _ in range(2):
            for q in basis:
                v = v - (q @ v) * q
        nv = np.linalg.norm(v)
        if nv >= tol:
            basis.append(v / nv)
    return np.stack(basis, axis=1) if basis else np.zeros((T64.shape[1], 0))


def ortho_lambda(mode, r):
    if mode == "full":
        return 1.0
    if mode == "mean":
        return 1.0 / r if r else 0.0
    return float(mode)


def project(E, rows_visual, Q, lam):
    """E with its visual rows replaced by v - lam * Q Q^T v (float64, cast back to E's dtype)."""
    out = E.clone()
    V = E[rows_visual].double().numpy()
    Vp = V - lam * ((V @ Q) @ Q.T)
    out[rows_visual] = torch.from_numpy(Vp).to(E.dtype)
    return out


def orthogonalize(E, rows, mode="full", rtol=RANK_RTOL):
    """E: [77, D] float tensor. Returns (E_perp, info)."""
    T64 = E[rows["text_used"]].double().numpy()
    Q, r, diag, P = householder_basis(T64, rtol)
    lam = ortho_lambda(mode, r)
    Ep = project(E, rows["visual"], Q, lam) if r else E.clone()
    return Ep, {"Q": Q, "rank": r, "lam": lam, "pivots": diag, "perm": P}


# ---------------------------------------------------------------------------------------------
# section 3: masks and the self-attention swap
class HarmonyState:
    """Shared by all processors of one run: the call index, mask layers, swap layers, masks."""

    def __init__(self, mask_layers, swap_layers, subject_cols, swap_mode="kv", batch4=True):
        self.mask_layers = set(mask_layers)
        self.swap_layers = set(swap_layers)
        self.subject_cols = subject_cols  # {"main": [...], "vis": [...]} columns of the 77 keys
        self.swap_mode = swap_mode
        self.batch4 = batch4
        self.swap_now = False
        self.masks = None  # {"main": bool [h, w], "vis": bool [h, w]} used by this call
        self.maps = {}  # layer -> {"main": [HW], "vis": [HW]} recorded in this call
        self.empty_vis_skips = 0


def _nearest(mask, h, w):
    H, W = mask.shape
    ys = [(y * H) // h for y in range(h)]
    xs = [(x * W) // w for x in range(w)]
    return mask[ys][:, xs]


class HarmonyAttnProcessor:
    """diffusers AttnProcessor (v0.25.1) arithmetic, plus recording and the swap."""

    def __init__(self, state, name, hw):
        self.state, self.name, self.hw = state, name, hw

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states, scale=scale)
        is_cross = encoder_hidden_states is not None
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states, scale=scale)
        value = attn.to_v(encoder_hidden_states, scale=scale)
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)
        attention_probs = attn.get_attention_scores(query, key, attention_mask)
        hidden_states = torch.bmm(attention_probs, value)

        st = self.state
        if is_cross and self.name in st.mask_layers:
            self._record(attn, attention_probs)
        if (not is_cross) and st.swap_now and self.name in st.swap_layers and st.masks is not None:
            hidden_states = self._swap(attn, query, key, value, attention_probs, hidden_states)

        hidden_states = attn.batch_to_head_dim(hidden_states)
        hidden_states = attn.to_out[0](hidden_states, scale=scale)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        hidden_states = hidden_states / attn.rescale_output_factor
        return hidden_states

    # batch order: batch-4 [uncond-main, uncond-vis, cond-main, cond-vis]; batch-2 [uncond, cond]
    def _record(self, attn, probs):
        st = self.state
        h = attn.heads
        B = probs.shape[0] // h
        p = probs.reshape(B, h, probs.shape[1], probs.shape[2])
        rec = {}
        procs = {"main": 2, "vis": 3} if st.batch4 else {"main": 1}
        for proc, b in procs.items():
            cols = st.subject_cols[proc]
            m = p[b][:, :, cols].double().mean(dim=-1)  # over the subject columns -> [heads, HW] (float64)
            rec[proc] = m.mean(dim=0)  # over heads -> [HW]
        st.maps[self.name] = rec

    def _swap(self, attn, query, key, value, probs, out):
        st = self.state
        h = attn.heads
        hgt, wid = self.hw
        m_main = _nearest(st.masks["main"], hgt, wid).reshape(-1)
        m_vis = _nearest(st.masks["vis"], hgt, wid).reshape(-1)
        if st.swap_mode == "kv" and not bool(m_vis.any()):
            st.empty_vis_skips += 1
            return out
        rows = m_main.nonzero().flatten()
        if rows.numel() == 0:
            return out
        out = out.clone()
        n_q, n_k = query.shape[1], key.shape[1]
        for bm, bv in ((0, 1), (2, 3)):  # uncond half, cond half
            sm, sv = slice(bm * h, (bm + 1) * h), slice(bv * h, (bv + 1) * h)
            if st.swap_mode == "kv":
                # main queries over the visual-only keys, keys outside M_vis masked with -inf
                s = torch.baddbmm(
                    torch.empty(h, n_q, n_k, dtype=query.dtype), query[sm], key[sv].transpose(-1, -2), beta=0, alpha=attn.scale
                )
                s = s.masked_fill(~m_vis[None, None, :], float("-inf"))
                o = torch.bmm(s.softmax(dim=-1), value[sv])
            else:  # map: the visual-only process's own probabilities applied to the main values
                o = torch.bmm(probs[sv], value[sm])
            out[sm, rows] = o[:, rows]
        return out


def mask_from_maps(maps, mask_layers, grid, layer_hw, proc):
    """Layer maps -> grid (area average) -> mean over layers -> (raw, min-max normalized, binary).

    The per-layer maps arrive in float64 (see HarmonyAttnProcessor._record); the combination and
    the normalization are done in float64 and the results cast to float32 for storage.
    """
    gh, gw = grid
    acc = []
    for name in mask_layers:
        m = maps[name][proc]
        lh, lw = layer_hw[name]
        m = m.reshape(1, 1, lh, lw)
        if (lh, lw) != (gh, gw):
            m = torch.nn.functional.avg_pool2d(m, (lh // gh, lw // gw))
        acc.append(m.reshape(gh, gw))
    raw = torch.stack(acc).mean(dim=0)
    lo, hi = raw.min(), raw.max()
    if hi > lo:
        norm = (raw - lo) / (hi - lo)
    else:
        norm = torch.zeros_like(raw)
    return raw, norm


# ---------------------------------------------------------------------------------------------
# options, layer sets, processors
DEFAULT_OPTIONS = {
    "ortho": True,
    "ortho_mode": "full",
    "ortho_exclude_class": True,
    "rank_rtol": RANK_RTOL,
    "swap": True,
    "swap_mode": "kv",
    "swap_start": 0.1,
    "swap_layers": "decoder",
    "mask_tokens": "visual",
    "mask_level": None,
    "mask_threshold": 0.3,
    "visual_prompt": "a {class}",
    "force_mask": None,
    "main_embedding": "prompt",
    "stock_processors": False,
}


def unet_layout(unet, lat_hw):
    """Transformer2D layers of the UNet: name -> (level, (h, w))."""
    n = len(unet.config.block_out_channels)
    h, w = lat_hw
    layers = {}
    for i, blk in enumerate(unet.down_blocks):
        for j, _ in enumerate(getattr(blk, "attentions", None) or []):
            layers[f"down_blocks.{i}.attentions.{j}"] = (i, (h >> i, w >> i))
    for j, _ in enumerate(getattr(unet.mid_block, "attentions", None) or []):
        layers[f"mid_block.attentions.{j}"] = (n - 1, (h >> (n - 1), w >> (n - 1)))
    for i, blk in enumerate(unet.up_blocks):
        lvl = n - 1 - i
        for j, _ in enumerate(getattr(blk, "attentions", None) or []):
            layers[f"up_blocks.{i}.attentions.{j}"] = (lvl, (h >> lvl, w >> lvl))
    return layers


def choose_layers(unet, lat_hw, mask_level=None):
    """(layers, mask level Lm, mask layers, swap layers) as section 3 defines them."""
    layers = unet_layout(unet, lat_hw)
    blk = {k: v for k, v in layers.items() if not k.startswith("mid_block")}
    lm = max(v[0] for v in blk.values()) if mask_level is None else mask_level
    mask_layers = [k for k, v in blk.items() if k.startswith("down_blocks") and v[0] in (lm, lm - 1)]
    mask_layers += [k for k, v in blk.items() if k.startswith("up_blocks") and v[0] in (lm, lm - 1)]
    swap_layers = [k for k in blk if k.startswith("up_blocks")]
    return layers, lm, mask_layers, swap_layers


def swap_start_index(swap_start, n_steps):
    if isinstance(swap_start, float):
        return int(math.floor(swap_start * n_steps + 1e-9))
    return int(swap_start)


def install_processors(unet, state, layers):
    procs = {}
    for name in unet.attn_processors:
        # e.g. up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor
        layer = name.split(".transformer_blocks")[0]
        hw = layers[layer][1] if layer in layers else None
        procs[name] = HarmonyAttnProcessor(state, layer, hw)
    unet.set_attn_processor(procs)
