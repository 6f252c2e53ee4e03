"""The config layer's error: ``<file>: <dotted.key>: <message>``."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration: ``str()`` is ``"<file>: <dotted.key>: <message>"``."""

    def __init__(self, file, key, message):
        self.file, self.key, self.message = str(file), key, message
        super().__init__(f"{self.file}: {key}: {message}" if key else f"{self.file}: {message}")
