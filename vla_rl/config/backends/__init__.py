"""One module per env backend, each registering its `env` section class with `@EnvConfig.register`.

Every module here is imported on the first look-up of a backend (`vla_rl/config/choice.py`); modules
whose name starts with "_" hold shared pieces and register nothing.
"""
