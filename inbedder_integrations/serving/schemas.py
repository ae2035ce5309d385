"""The request and response bodies of every route, as pydantic models.

They are what ``/docs`` and ``/openapi.json`` show, and the requests' fields are
checked against them.  The texts themselves are typed here but checked once, by
the engine when it tokenises them (so an error names ``input[3]``, and a text is
never checked twice on its way to the model).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError

from .responses import ApiError

__all__ = [
    "HealthResponse",
    "InfoResponse",
    "ModelCard",
    "ModelList",
    "OpenAIEmbedding",
    "OpenAIEmbeddingRequest",
    "OpenAIEmbeddingResponse",
    "OpenAIError",
    "OpenAIErrorBody",
    "TEIEmbedRequest",
    "TEIError",
    "Usage",
    "parse_body",
]

#: A request's texts: typed for the schema, checked by the engine as it tokenises them.
_Texts = Annotated[str | list[str], SkipValidation]


class _Request(BaseModel):
    """Fields are checked strictly (``"5"`` is not a number); fields no route knows are ignored,
    as OpenAI's and TEI's clients add their own (``user``)."""

    model_config = ConfigDict(extra="ignore", strict=True)


class OpenAIEmbeddingRequest(_Request):
    input: _Texts = Field(description="A text or a list of texts (token-id arrays are refused).")
    model: str | None = Field(
        None,
        description="A served name: documents under its instruction; NAME:query for its query instruction.",
    )
    instruction: str | None = Field(
        None,
        description="Embed under this question instead of a served name's (unless the server refuses it).",
    )
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes."
    )
    dimensions: int | None = Field(None, description="Only the model's own width is served.")
    user: str | None = Field(None, description="Accepted and ignored.")


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Prompt tokens embedded, template and instruction included.")
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str = Field(description="The name to send as `model`.")
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "inbedder"
    instruction: str = Field(description="The question this name embeds under.")
    dim: int
    fingerprint: str = Field(description="What the vectors mean: the model, adapter and settings.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TEIEmbedRequest(_Request):
    inputs: _Texts = Field(description="A text or a list of texts.")
    prompt_name: str | None = Field(None, description="A served name (default: the first).")
    instruction: str | None = Field(None, description="Embed under this question instead of a served name's.")
    normalize: bool = True
    truncate: bool | None = Field(None, description="Cut texts that do not fit (default: the server's).")
    truncation_direction: Literal["Right", "right"] = Field("Right", description="Only the end is cut.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class InfoResponse(BaseModel):
    """TEI's ``/info`` fields, then this server's own."""

    model_id: str
    model_dtype: str
    model_type: dict[str, Any]
    max_input_length: int
    max_batch_tokens: int = Field(description="Prompt tokens embedded together at most (real counts).")
    max_client_batch_size: int
    max_batch_requests: int
    max_concurrent_requests: int
    auto_truncate: bool
    version: str
    dim: int
    device: str
    fingerprint: str
    pid: int
    instructions: dict[str, str] = Field(description="Every served name and its question.")


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


class TEIError(BaseModel):
    error: str
    error_type: str


_Model = TypeVar("_Model", bound=_Request)

#: What a field must be, by pydantic's error type, for messages in the package's words.
_EXPECTED = {"string_type": "a string", "bool_type": "true or false", "int_type": "an integer"}


def parse_body(model: type[_Model], body: dict[str, Any]) -> _Model:
    """``body`` as ``model``, or a 422 naming the first wrong field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise ApiError(422, f"{field} is required", param=field) from None
        expected = _EXPECTED.get(first["type"]) or first.get("ctx", {}).get("expected") or first["msg"]
        message = f"{field} must be {expected}, got {first.get('input')!r}"
        raise ApiError(422, message[:500], param=field) from None
