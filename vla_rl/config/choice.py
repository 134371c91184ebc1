"""Config sections whose class one of their own keys chooses, as LeRobot's `type:` does.

`model.family` chooses the class of the `model` section and `env.backend` the class of the `env`
section. The base class (`ModelConfig`, `EnvConfig`) holds the keys every choice shares; each
registered subclass adds the keys that only its family or backend reads. A key of another family
is therefore an unknown key, refused with a message that says which choices have it, and an
unregistered name is refused with the registered ones.

A new family or backend is one new module in its section's package (`vla_rl/config/families/`,
`vla_rl/config/backends/`) holding a dataclass registered with `@ModelConfig.register("name")`;
every module of the package is imported on the first look-up, so nothing else needs editing.

Calling the base class builds the chosen subclass: `ModelConfig(family="cnn", use_proprio=True)`
is a `CNNConfig`, and `ModelConfig()` is the default family's class.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, ClassVar

from vla_rl.config.core import ConfigError


class ChoiceSection:
    """Mixin of a config dataclass whose concrete class the value of its `selector` key picks.

    A base declares itself with class keywords: `class ModelConfig(ChoiceSection, section="model",
    selector="family", package="vla_rl.config.families")`.
    """

    section: ClassVar[str]
    """Dotted name of the config section (for messages), e.g. "model"."""
    selector: ClassVar[str]
    """The key that names the choice, e.g. "family"."""
    _package: ClassVar[str]
    _registry: ClassVar[dict[str, type]]
    _base: ClassVar[type]
    _loaded: ClassVar[list[bool]]

    def __init_subclass__(cls, section: str | None = None, selector: str | None = None, package: str | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if selector is not None:  # a base: it starts its own registry
            cls.section, cls.selector, cls._package = section or selector, selector, package or ""
            cls._registry, cls._base, cls._loaded = {}, cls, [False]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get(cls.selector)
        if name is None:
            if cls is not cls._base:  # a concrete class (also how pickle and copy rebuild an instance)
                return object.__new__(cls)
            name = getattr(cls, cls.selector)  # the base's default choice
        return object.__new__(cls.choice_class(name))

    @classmethod
    def register(cls, name: str):
        """Class decorator (above `@dataclass`): make the subclass the choice `name`."""

        def add(sub: type) -> type:
            if not (isinstance(sub, type) and issubclass(sub, cls) and dataclasses.is_dataclass(sub)):
                raise TypeError(f"{cls.section} choice {name!r} must be a dataclass subclass of {cls.__name__}")
            default = sub.__dataclass_fields__[cls.selector].default
            if default != name:
                raise TypeError(f"{sub.__name__}.{cls.selector} must default to {name!r} (its registered name), "
                                f"not {default!r}")
            if cls._registry.get(name, sub) is not sub:
                raise ValueError(f"{cls.section}.{cls.selector}={name!r} is registered twice")
            cls._registry[name] = sub
            return sub

        return add

    @classmethod
    def _load_choices(cls) -> None:
        if cls._loaded[0] or not cls._package:
            return
        cls._loaded[0] = True  # first, since a choice's module may look up its base's choices while importing
        try:
            package = importlib.import_module(cls._package)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):  # "_" modules hold shared pieces
                    importlib.import_module(f"{cls._package}.{module.name}")
        except BaseException:
            cls._loaded[0] = False
            raise

    @classmethod
    def choice_names(cls) -> list[str]:
        """Registered names whose class is `cls` or a subclass of it."""
        cls._load_choices()
        return sorted(n for n, c in cls._registry.items() if issubclass(c, cls))

    @classmethod
    def choice_class(cls, name: Any) -> type:
        """The class registered as `name`; a ConfigError that lists the registered names otherwise."""
        cls._load_choices()
        target = cls._registry.get(name) if isinstance(name, str) else None
        key = f"{cls.section}.{cls.selector}"
        if target is None:
            raise ConfigError(f"{key}={name!r} is not registered; choose one of {cls._base.choice_names()} (a new one "
                              f"is a module in {cls._package.replace('.', '/')}/)", key=key)
        if not issubclass(target, cls):
            raise ConfigError(f"{key}={name!r} is not a kind of {cls.__name__}; build it with "
                              f"{cls._base.__name__}({cls.selector}={name!r}, ...)", key=key)
        return target

    @classmethod
    def choose(cls, data: dict[str, Any]) -> type:
        """The class that the plain dict `data` of this section selects (`from_dict` calls this)."""
        return cls.choice_class(data.get(cls.selector, getattr(cls, cls.selector)))

    @classmethod
    def unknown_key_hint(cls, key: str) -> str:
        """For a key the chosen class lacks: which other choices have it, and the fix."""
        cls._base._load_choices()
        owners = sorted(n for n, c in cls._base._registry.items() if key in {f.name for f in dataclasses.fields(c)})
        if not owners:
            return ""
        here = f"{cls.section}.{cls.selector}={getattr(cls, cls.selector)}"
        return (f"; {cls.section}.{key} is read only with {cls.section}.{cls.selector} in {owners}, so it cannot act "
                f"with {here}: remove it, or set {cls.section}.{cls.selector} to one of {owners}")


__all__ = ["ChoiceSection"]
