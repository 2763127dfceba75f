"""The REST service's settings, read from the environment (prefix ``EB_API_``) by pydantic-settings.

Every setting has a default that works for a local install; docs/api.md lists them all.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from eb_operator.api.documents import DEFAULT_LIMITS, Limits
from eb_operator.model.federation import DEFAULT_MAX_HOPS, MAX_VIA_IDS
from eb_operator.model.session_keys import check_key


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EB_API_", extra="ignore", frozen=True)

    namespace: str = Field(
        default="execution-broker",
        description="The one namespace where REST-created OfferSets (and their Executions) live.",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="kubeconfig file; unset: in-cluster config in a Pod, else KUBECONFIG or ~/.kube/config.",
    )
    public_url: str | None = Field(
        default=None,
        description="Absolute base URL clients reach the service at (e.g. https://broker.example.org). "
        "Unset: taken from each request's Host (and X-Forwarded-* when trust_forwarded is on).",
    )
    trust_forwarded: bool = Field(
        default=False, description="Honour X-Forwarded-Proto/Host when building hrefs behind a proxy."
    )
    answer_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a POST waits for the operator's answer (offers, or a phase change) "
        "before giving 503 with Retry-After.",
    )
    retry_after_seconds: int = Field(default=2, ge=1, description="Retry-After sent with a 503.")
    broker_id: str = Field(
        default="execution-broker",
        description="This broker's id in the EB-Via header of requests peer brokers forward "
        "(the operator's EB_BROKER_ID): a request that already passed through it is refused (508).",
    )
    max_hops: int = Field(
        default=DEFAULT_MAX_HOPS,
        ge=0,
        le=MAX_VIA_IDS,
        description="A forwarded request that has passed through more brokers than this is refused (508).",
    )
    log_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long GET /sessions/{uuid}/logs?follow=true waits for a session's container to "
        "start before it ends the stream (the client asks again).",
    )
    create_status: int = Field(
        default=303, description="Status of a successful POST /offersets: 303 (with body) or 200."
    )
    # the limits on request bodies: defaults from api.documents.Limits, the one place they are set
    max_body_bytes: int = Field(
        default=DEFAULT_LIMITS.max_body_bytes, ge=1024, description="Larger bodies get 413."
    )
    max_stored_bytes: int = Field(
        default=DEFAULT_LIMITS.max_stored_bytes,
        ge=1024,
        description="Largest document, as JSON in the cluster's storage, accepted (413 past it).",
    )
    yaml_max_depth: int = Field(
        default=DEFAULT_LIMITS.max_depth,
        ge=4,
        description="Deepest nesting accepted in a body (YAML and JSON).",
    )
    yaml_max_nodes: int = Field(
        default=DEFAULT_LIMITS.max_nodes, ge=16, description="Most scalars+collections in a body."
    )
    max_number_chars: int = Field(
        default=DEFAULT_LIMITS.max_number_chars, ge=24, description="Longest number, as written, in a body."
    )
    max_string_chars: int = Field(
        default=DEFAULT_LIMITS.max_string_chars, ge=256, description="Longest string or key in a body."
    )

    allow_anonymous: bool = Field(
        default=False,
        description="Serve callers without a bearer token as system:anonymous (tests, development).",
    )
    token_review: bool = Field(
        default=True, description="Check bearer tokens with the Kubernetes TokenReview API."
    )
    token_audiences: list[str] = Field(
        default_factory=list, description="Audiences to ask TokenReview for (empty: the API server's)."
    )
    token_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long a TokenReview result is reused."
    )
    token_cache_size: int = Field(default=10_000, ge=1)
    static_tokens_file: Path | None = Field(
        default=None,
        description='CSV file (Kubernetes static-token format: token,user,uid,"group1,group2"), '
        "typically a mounted Secret.",
    )
    static_tokens: str | None = Field(
        default=None, description="The same CSV lines inline (newline- or semicolon-separated)."
    )

    session_key_file: Path | None = Field(
        default=None,
        description="The session key shared with the operator (a mounted Secret): it signs the gate's "
        "cookies and derives notebook servers' tokens. Unset or absent (an optional Secret not made), "
        "and no session_key: no login links, and the gate lets nobody in.",
    )
    session_key: SecretStr | None = Field(default=None, description="The same key inline (tests).")
    login_seconds: int = Field(default=60, ge=5, le=3600, description="How long a login link may be used.")

    def body_limits(self) -> Limits:
        """The bounds on request bodies (413 for the size, 400 for the rest)."""
        return Limits(
            max_body_bytes=self.max_body_bytes,
            max_stored_bytes=self.max_stored_bytes,
            max_depth=self.yaml_max_depth,
            max_nodes=self.yaml_max_nodes,
            max_number_chars=self.max_number_chars,
            max_string_chars=self.max_string_chars,
        )

    def key(self) -> bytes | None:
        """The session key (at least 32 bytes; ValueError otherwise), or None."""
        if self.session_key_file is not None and self.session_key_file.exists():
            return check_key(self.session_key_file.read_bytes().strip())
        if self.session_key is not None:
            return check_key(self.session_key.get_secret_value().encode())
        return None

    def token_lines(self) -> str:
        """All static-token CSV text from the file and the inline setting."""
        parts: list[str] = []
        if self.static_tokens_file is not None:
            parts.append(self.static_tokens_file.read_text(encoding="utf-8"))
        if self.static_tokens:
            parts.append(self.static_tokens.replace(";", "\n"))
        return "\n".join(parts)
