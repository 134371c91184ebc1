"""OpenVLA-style family: fused DINOv2 + SigLIP, MLP projector, Llama, 7 autoregressive action tokens."""
