"""The one exception type for a user's mistake."""


class LightclsError(Exception):
    """A mistake in the user's data, config or files: shown as one line, without a traceback."""
