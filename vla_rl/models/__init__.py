"""Policies: the interface (base), the action codec, the families (openvla, openvla_oft, cnn, pi0) behind a
registry, LoRA, and checkpoint I/O. Entry points: `vla_rl.models.registry.build_policy` / `load_policy`.

Importing this package is cheap; torch and transformers load with the modules that need them.
"""
