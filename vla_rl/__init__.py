"""vla-rl: reinforcement-learning fine-tuning of vision-language-action policies in simulators.

Importing the package is cheap: heavy dependencies (torch, simulators) load only in the modules
that need them.
"""

__version__ = "0.1.0"
