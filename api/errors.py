"""The API's one error shape: {"code": stable machine word, "message": for a human, "field"}."""


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}

    def body(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}
