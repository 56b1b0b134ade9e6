"""The error every input check raises. Plain Python, so Django-free modules can use it too."""


class InputError(ValueError):
    """Input we cannot accept. ``field`` names the part that is wrong (None: the whole input);
    ``message`` says what is wrong and what to do, and never repeats a secret."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
