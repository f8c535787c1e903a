-- fleetfit control plane, schema version 1. Plain SQL that SQLite and PostgreSQL both accept:
-- TEXT and BIGINT columns, unix-second timestamps, no AUTOINCREMENT, no JSON functions.

CREATE TABLE enrollment_tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    uses        BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    labels      TEXT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL,
    labels          TEXT NOT NULL,
    credential_id   TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    token_id        TEXT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    revoked_at      BIGINT,
    last_seen       BIGINT,
    state           TEXT NOT NULL,
    model           TEXT,
    quant           TEXT,
    last_error      TEXT,
    profile         TEXT,
    profile_digest  TEXT
);

CREATE TABLE readiness_reports (
    device_id   TEXT NOT NULL,
    report_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, report_id)
);

CREATE INDEX readiness_reports_received ON readiness_reports (received_at);
