// Package harmony holds the CPU-side math of the Harmony method
// as pure functions; the pipeline wires them to the
// text encoder and the UNet.
//
// Contextual embedding orchestration (the visual rows projected off the
// span of the text rows):
//
//	rows, err := harmony.ClassifyRows(ids61, classIDs, harmony.BLIPLayout)
//	res, err := harmony.Orthogonalize(E, D, rows, harmony.DefaultOrthoOptions())
//	// res.E replaces the main process's conditional embedding; log res.Warning.
//
// ELITE injects one word in place at the placeholder's row s, so its rows
// come from ClassifyInjectedRows(ids77, s, placeholderIDs, classIDs, BOS, EOS)
// (no class word: classIDs nil), and the mask columns are each process's s.
//
// Subject masks and self-attention swap, once per run:
//
//	sites := u.Sites(h, w) // the UNet's attention layers (nn.Sited)
//	sets, err := harmony.SelectLayers(sites, harmony.LayerOptions{})
//	sched := harmony.NewMaskSchedule(harmony.DefaultSwapStart.Index(N))
//
// and at every UNet call i:
//
//	active, mMain, mVis, err := sched.Begin(i) // masks of call i−1 when active
//	// in each swap layer s: harmony.ResizeNearest(mMain, s.H, s.W), same for mVis
//	// per mask layer and process: harmony.SubjectMap(probs, heads, H·W, 77, cols)
//	_, softMain, maskMain, err := harmony.SubjectMask(mainMaps, sets.GridH, sets.GridW, τ)
//	_, softVis, maskVis, err := harmony.SubjectMask(visMaps, sets.GridH, sets.GridW, τ)
//	sched.Record(maskMain, maskVis)
package harmony
