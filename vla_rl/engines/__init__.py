"""Training engines: how the actor's parameters are stepped (one process, FSDP2, DeepSpeed ZeRO); see registry.py."""
