"""The one exception type for problems a user can cause."""


class VaelabError(Exception):
    """Bad input, a missing or corrupt file, or an unreachable data source.

    The CLI prints its message as one line and exits non-zero; anything else that
    escapes is a bug in vaelab.
    """


class WriteError(VaelabError):
    """A file could not be written (disk full, read-only, ...): nothing else should be tried."""
