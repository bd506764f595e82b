"""Reading THINGPRESS_* settings so that one synth names every bad one, not only the first.

A concern's reader (the modules beside this one) gets the one :class:`Reader` of a ``from_env``
call: it reads its settings with :meth:`Reader.get`, :meth:`Reader.choice`, :meth:`Reader.integer`
or its own parsing, appends one line per bad setting to :attr:`Reader.errors`, starting with the
setting's name, and goes on with the default, so the settings after it are still checked.
:meth:`Reader.check` then raises one :class:`ConfigError` holding every line.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """Bad configuration: one line per setting, each naming it."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("thingpress configuration is invalid:\n" + "\n".join(f"  {e}" for e in errors))


class Reader:
    """The environment the settings come from, and the errors found in it so far."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.errors: list[str] = []

    def get(self, name: str, default: str = "") -> str:
        """The setting without surrounding blanks; ``default`` when it is unset or blank."""
        return self.env.get(name, "").strip() or default

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.get(name, default)
        if value not in options:
            self.errors.append(f"{name}: must be one of {', '.join(options)}, got {value!r}")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.errors.append(f"{name}: must be an integer, got {raw!r}")
            return default
        if not low <= value <= high:
            self.errors.append(f"{name}: must be between {low} and {high}, got {value}")
            return default
        return value

    def check(self) -> None:
        """Raise :class:`ConfigError` with every error found, if there is one."""
        if self.errors:
            raise ConfigError(self.errors)
