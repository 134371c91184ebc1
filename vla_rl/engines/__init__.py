"""Training engines: how the actor's parameters are stepped (single process now; FSDP2, DeepSpeed next)."""
