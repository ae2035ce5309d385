"""The request and response bodies of every route, as pydantic models.

They are what ``/docs`` and ``/openapi.json`` show, and the requests' fields are
checked against them.  The texts themselves are typed here but checked once, by
the engine when it tokenises them (so an error names ``input[3]``, and a text is
never checked twice on its way to the model).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError, WithJsonSchema

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
    "RequestRules",
    "TEIEmbedRequest",
    "TEIError",
    "Usage",
    "parse_body",
    "request_schema",
]

#: A request's texts: typed for the schema, checked by the engine as it tokenises them (an
#: empty list is refused by the routes; an empty text is embedded, as the engine embeds it).
_Texts = Annotated[str | Annotated[list[str], Field(min_length=1)], SkipValidation]

#: The characters ``str.strip`` removes (``str.isspace``): an instruction of only these is refused.
BLANKS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: What :func:`~inbedder_integrations.engine.prompting.validate_instruction` takes: a string
#: holding a character that is not blank.  Literal characters, no escapes: every regex
#: dialect a schema reader may use (ECMA-262, Python, Rust) reads the class alike.
NON_BLANK = f"[^{BLANKS}]"

#: An instruction: pydantic checks its type; the route checks it is not blank (a 400).
_Instruction = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "pattern": NON_BLANK})]


class _Request(BaseModel):
    """Fields are checked strictly (``"5"`` is not a number); fields no route knows are ignored,
    as OpenAI's and TEI's clients add their own (``user``)."""

    model_config = ConfigDict(extra="ignore", strict=True)


class OpenAIEmbeddingRequest(_Request):
    """OpenAI's request: a served `model`, or an `instruction` (with or without `model`)."""

    input: _Texts = Field(description="A text or a list of texts (token-id arrays are refused).")
    model: str | None = Field(
        None,
        description="A served name: documents under its instruction; NAME:query for its query instruction.",
    )
    instruction: _Instruction | None = Field(
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
    """TEI's request: the path's name, else `prompt_name`, else the first served name."""

    inputs: _Texts = Field(description="A text or a list of texts.")
    prompt_name: str | None = Field(
        None, description="A served name (default: the first; a path's name wins over it)."
    )
    instruction: _Instruction | None = Field(
        None, description="Embed under this question instead of a served name's."
    )
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


@dataclass(frozen=True)
class RequestRules:
    """What one server takes, beyond the request models' types: its names, limits and width."""

    served: Sequence[str]
    """The model names it serves (a name that is not served gets 404)."""
    model: str
    """The model's own name, which a request with an ``instruction`` may also give."""
    max_inputs: int
    instruction_field: bool
    """Whether a request may carry its own ``instruction`` (else a 400)."""
    dim: int | None
    """The model's width, the one ``dimensions`` it serves (None: not loaded yet)."""


def request_schema(
    model: type[OpenAIEmbeddingRequest | TEIEmbedRequest], rules: RequestRules, *, named_by_path: bool
) -> dict[str, Any]:
    """``model``'s JSON schema as one server parses it: a body the schema allows, the route
    embeds, and one it refuses, the route refuses (a name that is not served with a 404).
    ``named_by_path``: the route's path names the model (``/{name}/embed``); ``prompt_name``
    is then not read."""
    schema = copy.deepcopy(model.model_json_schema())
    properties = schema["properties"]
    texts, name = ("input", "model") if model is OpenAIEmbeddingRequest else ("inputs", "prompt_name")
    for option in properties[texts]["anyOf"]:
        if option.get("type") == "array":
            option["maxItems"] = rules.max_inputs
    served = list(rules.served)
    instructed = [*served, rules.model] if rules.instruction_field else served
    instruction: dict[str, Any] = {
        "required": ["instruction"],
        "properties": {"instruction": {"type": "string"}},
    }
    if not rules.instruction_field:
        properties["instruction"] = {"type": "null", "description": "This server refuses an instruction."}
    if "dimensions" in properties and rules.dim is not None:
        properties["dimensions"]["anyOf"][0]["enum"] = [rules.dim]
    if named_by_path and name == "prompt_name":
        return schema
    properties[name]["anyOf"][0]["enum"] = instructed
    # A name that is not served needs an instruction (the model's own name); model may be left
    # out only then, prompt_name always (the first served name).
    plain: dict[str, Any] = {"properties": {name: {"anyOf": [{"enum": served}, {"type": "null"}]}}}
    if name == "model":
        plain = {"required": ["model"], "properties": {"model": {"enum": served}}}
    schema["anyOf"] = [plain, instruction] if rules.instruction_field else [plain]
    return schema


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
