"""How an adapter call fails. `retryable` tells the executor whether to try again, `retry_after`
when. Messages name the adapter and the setting to fix, never a value or personal data.

Apart from `adapters.base` so that the shared HTTP helper (`adapters.http`), which raises them,
and the interface, which uses that helper, each import only what comes before them."""

from __future__ import annotations


class AdapterError(Exception):
    """A call failed. `retryable` tells the executor whether to try again, `retry_after` when."""

    retryable: bool = False

    def __init__(
        self, adapter: str, message: str, *, retry_after: float | None = None, remote: str = ""
    ) -> None:
        # `remote`: the provider's own words (an error code, a masked message), kept apart so that
        # a connection check can leave them out: from a URL that is not the provider's they would
        # be whatever answered there.
        super().__init__(f"{adapter}: {message}" + (f": {remote}" if remote else ""))
        self.adapter = adapter
        self.retry_after = retry_after
        self.summary = f"{adapter}: {message}"


class TemporaryFailure(AdapterError):
    retryable = True


class RateLimited(TemporaryFailure):
    pass


class PermanentFailure(AdapterError):
    retryable = False


class AuthFailed(PermanentFailure):
    """Credentials rejected; the message names the adapter and the setting to fix."""


class SettingsInvalid(PermanentFailure):
    """The connection's settings cannot be used (a stored value the server now refuses, a URL it
    will not call); the message names the setting and what is allowed, never its value."""
