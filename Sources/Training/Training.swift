// The Training module: DINOv2's self-supervised step on the CPU, written llm.c style.
//
// Layers are pairs of plain functions over Float buffers (Layers/*+Backward.swift: the training
// forward a backward needs, and the backward beside it). A model is one flat block of parameters
// per student module (Parameters/), one struct of activations per backbone pass (Model/), and
// one block of gradients mirroring the parameters. Losses/ holds DINO, iBOT and KoLeo with the
// teacher's centering or Sinkhorn-Knopp; Optim/ AdamW with DINOv2's parameter groups, per-module
// clipping and the EMA teacher; SSLStep.swift runs one official step. The oracle is PyTorch: a
// debug state (DebugState/) written from the official code is replayed and every number compared
// (StepReport.swift).
