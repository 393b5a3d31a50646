"""Domain errors. Every message names the problem and the fix in one line.

The backend raises these; only the magic layer turns them into IPython's UsageError.
"""


class NbllmError(Exception):
    """A problem the user can fix (bad option, missing file, unknown model...)."""


class ConfigError(NbllmError, ValueError):
    """An option has a bad value."""


class ModelError(NbllmError):
    """A model or tokenizer cannot be found, loaded or used as asked."""


class OfflineError(ModelError):
    """A hub id was named but the hub cannot be reached."""


class DataError(NbllmError):
    """Data is missing, empty or malformed."""


class TemplateError(NbllmError):
    """A prompt template cannot be applied (e.g. the tokenizer has no chat template)."""


class ServerError(NbllmError):
    """A server nbllm was pointed at (e.g. Chroma with --server URL) cannot be reached."""
