"""One module per policy family, each registering its `model` section class with `@ModelConfig.register`.

Every module here is imported on the first look-up of a family (`vla_rl/config/choice.py`); modules
whose name starts with "_" hold shared pieces and register nothing.
"""
