"""The service's own OpenAPI description of bodies: the IVOA documents (ivoa-std shape, digest §3)
and the error document (§6.2). Bodies are read and written by the API itself (YAML or JSON), so
FastAPI cannot infer them; these schemas document them for /docs and for schemathesis.
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_MINMAX: dict[str, Any] = {
    "type": "object",
    "properties": {
        "min": {"type": "integer", "format": "int64"},
        "max": {"type": "integer", "format": "int64"},
    },
}
_REQ_OFF: dict[str, Any] = {"type": "object", "properties": {"requested": _MINMAX, "offered": _MINMAX}}
_NAME_VALUE: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}

MESSAGE_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": _STR,
        "kind": _STR,
        "time": {"type": "string", "format": "date-time"},
        "level": {"type": "string", "enum": ["DEBUG", "WARN", "ERROR", "INFO", "OTHER"]},
        "template": _STR,
        "values": _NAME_VALUE,
        "message": _STR,
    },
}
_MESSAGES: dict[str, Any] = {"type": "array", "items": {"$ref": "#/components/schemas/MessageItem"}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "MessageItem": MESSAGE_ITEM,
    "ErrorDocument": {
        "description": "Digest §6.2: at least one ERROR MessageItem (C26 dialect: under meta.messages). "
        "A 409 on a session carries the whole current session with the message added.",
        "type": "object",
        "properties": {
            "messages": _MESSAGES,
            "meta": {"type": "object", "properties": {"messages": _MESSAGES}},
        },
    },
    "OfferSetRequest": {
        "description": "ivoa-std OfferSetRequest (digest §3.2); C26 ExecutionRequest bodies are "
        "accepted too.",
        "type": "object",
        "properties": {
            "name": _STR,
            "executable": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": _STR, "name": _STR, "location": _STR},
            },
            "resources": {
                "type": "object",
                "properties": {
                    "compute": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {"type": _STR, "name": _STR, "cores": _REQ_OFF, "memory": _REQ_OFF},
                        },
                    },
                    "storage": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {"type": _STR, "name": _STR, "size": _REQ_OFF},
                        },
                    },
                    "data": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {"type": _STR, "name": _STR, "location": _STR},
                        },
                    },
                },
            },
            "schedule": {
                "type": "object",
                "properties": {
                    "requested": {
                        "type": "object",
                        "properties": {"duration": _STR, "start": {"type": "array", "items": _STR}},
                    }
                },
            },
        },
    },
    "ExecutionRequest": {
        "description": "C26 ExecutionRequest (digest §3.12): executable, one compute, storage[], "
        "data[], schedule.",
        "type": "object",
        "properties": {
            "executable": {"type": "object", "required": ["kind"], "properties": {"kind": _STR}},
            "compute": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": _STR, "cores": _MINMAX, "memory": _MINMAX},
            },
            "schedule": {
                "type": "object",
                "properties": {
                    "requested": {"type": "object", "properties": {"duration": _STR, "start": _STR}}
                },
            },
        },
    },
    "UpdateRequest": {
        "description": "ivoa-std {update: EnumValueUpdate}, or the bare C26 update with `kind`.",
        "type": "object",
        "properties": {
            "update": {
                "type": "object",
                "required": ["type", "path"],
                "properties": {
                    "type": {"type": "string", "enum": ["uri:enum-value-update"]},
                    "path": {"type": "string", "enum": ["phase", "/phase"]},
                    "value": {"type": "string", "enum": ["ACCEPTED", "REJECTED", "CANCELLED"]},
                },
            },
            "kind": _STR,
            "path": _STR,
            "value": _STR,
        },
    },
    "ExecutionSessionResponse": {
        "description": "An offer, and later the session it becomes (digest §3.9). "
        "C26: AbstractExecutionSession.",
        "type": "object",
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "href": _STR,
            "type": _STR,
            "kind": _STR,
            "name": _STR,
            "created": {"type": "string", "format": "date-time"},
            "phase": {
                "type": "string",
                "enum": [
                    "PROPOSED",
                    "INITIAL",
                    "OFFERED",
                    "ACCEPTED",
                    "REJECTED",
                    "EXPIRED",
                    "WAITING",
                    "PREPARING",
                    "READY",
                    "AVAILABLE",
                    "RUNNING",
                    "RELEASING",
                    "COMPLETED",
                    "FAILED",
                    "CANCELLED",
                ],
            },
            "expires": {"type": "string", "format": "date-time"},
            "options": {"type": "array", "items": {"type": "object"}},
            "messages": _MESSAGES,
        },
    },
    "LoginLink": {
        "description": "A one-time login link to a session's URL: opening it sets an HttpOnly cookie "
        "for the session's path (docs/data-and-notebooks.md, Opening a session).",
        "type": "object",
        "required": ["url", "expires"],
        "properties": {"url": _STR, "expires": {"type": "string", "format": "date-time"}},
    },
    "StorageResource": {
        "description": "A storage resource of a session (SimpleStorageResource) as the broker reports it: "
        "its uuid and href (a later request of the same owner names it by this href to mount it "
        "again), its offered size and lifetime, until when it is kept (expires), and, for results "
        "staged out, how the delivery went (stageout.delivery).",
        "type": "object",
        "properties": {
            "uuid": _STR,
            "href": _STR,
            "type": _STR,
            "kind": _STR,
            "name": _STR,
            "size": {"type": "object"},
            "lifetime": {"type": "object"},
            "expires": {"type": "string", "format": "date-time"},
            "stageout": {"type": "object"},
        },
    },
    "OfferSetResponse": {
        "description": "digest §3.8: uuid and href required (C26: under meta), result YES or NO, the offers.",
        "type": "object",
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "href": _STR,
            "type": _STR,
            "name": _STR,
            "created": {"type": "string", "format": "date-time"},
            "result": {"type": "string", "enum": ["YES", "NO"]},
            "offers": {"type": "array", "items": {"$ref": "#/components/schemas/ExecutionSessionResponse"}},
            "messages": _MESSAGES,
        },
    },
}

MEDIA_TYPES = ("application/yaml", "application/json")


def content(schema: str) -> dict[str, Any]:
    return {m: {"schema": {"$ref": f"#/components/schemas/{schema}"}} for m in MEDIA_TYPES}


def request_body(schema: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": content(schema)}}


Responses = dict[int | str, dict[str, Any]]


def errors(*codes: int) -> Responses:
    text = {
        400: "Unreadable or structurally invalid body (the message names the bad field's path)",
        401: "No valid bearer token",
        404: "No such offer set or session for this caller",
        406: "Neither YAML nor JSON is acceptable",
        409: "The phase change is not allowed now; the body is the unchanged session with an ERROR message",
        413: "The body is larger than the configured limit",
        415: "The body is neither YAML nor JSON",
        429: "The caller (or its group) asked more often than the platform allows: ask again after "
        "Retry-After seconds",
        503: "The operator did not answer in time (Retry-After), or the API server is unreachable",
        508: "A peer broker forwarded the request back to this broker, or past its hop limit (EB-Via)",
    }
    return {c: {"description": text[c], "content": content("ErrorDocument")} for c in codes}


def install(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the body schemas to a generated OpenAPI document."""
    spec.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    return spec
