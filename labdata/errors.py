"""The one exception labdata raises for problems a user can fix."""


class LabDataError(RuntimeError):
    """A dataset could not be loaded; the message says which file and what to do."""
