"""Domain errors: a rule of the business said no. Views and the admin show the message as it is."""


class DomainError(Exception):
    """A change the domain forbids; the message is written for the person who asked for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class ForbiddenTransition(DomainError):
    """The job cannot go there from where it is."""


class ConflictError(DomainError):
    """Someone else changed the job first; the person should look again before retrying."""
