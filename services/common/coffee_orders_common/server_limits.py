"""How many connections and calls callers may hold open on a service's gRPC and /metrics ports,
and for how long (the ``limits`` section of the settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .setting_fields import setting


class ServerLimits(BaseModel):
    """How many connections and calls callers may hold open on a service, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_connections: int = setting(
        2_000,
        env="COFFEE_MAX_CONNECTIONS",
        help="connections on the gRPC port; more are closed as soon as they are accepted",
        ge=1,
        le=1_000_000,
    )
    max_calls: int = setting(
        10_000,
        env="COFFEE_MAX_CALLS",
        help="calls (RPCs and streams) at once on the gRPC port; more get RESOURCE_EXHAUSTED",
        ge=1,
        le=1_000_000,
    )
    idle_timeout_s: float = setting(
        120.0,
        env="COFFEE_IDLE_TIMEOUT",
        help="seconds a connection may stay without a call (gRPC) or request (/metrics)",
        gt=0,
        le=86_400,
    )
    handshake_timeout_s: float = setting(
        20.0,
        env="COFFEE_HANDSHAKE_TIMEOUT",
        help="seconds a new gRPC connection has to finish its TLS and HTTP/2 handshake",
        gt=0,
        le=600,
    )
    max_age_s: float = setting(
        3_600.0,
        env="COFFEE_MAX_CONNECTION_AGE",
        help="seconds after which a gRPC connection is asked to go (GOAWAY)",
        gt=0,
        le=31_536_000,
    )
    max_age_grace_s: float = setting(
        300.0,
        env="COFFEE_MAX_CONNECTION_AGE_GRACE",
        help="seconds the calls of such a connection get to finish before it is closed",
        ge=0,
        le=86_400,
    )
    keepalive_s: float = setting(
        60.0,
        env="COFFEE_KEEPALIVE",
        help="seconds of quiet after which the server pings a connection (20 s to answer)",
        ge=10,
        le=86_400,
    )
    max_metrics_connections: int = setting(
        32,
        env="COFFEE_METRICS_MAX_CONNECTIONS",
        help="connections on the /metrics port; more get 503",
        ge=1,
        le=100_000,
    )
