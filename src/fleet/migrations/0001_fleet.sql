-- callwarden fleet schema, version 1: what every site exports (metadata, never audio).
-- Applied by `callwarden fleet migrate --db URL`, in one transaction, recorded in
-- fleet_migrations. Rows are keyed by site; the exporter writes them, nothing else should.

CREATE TABLE fleet_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    by_build text NOT NULL
);

-- One row per site: how far its outbox and its audit chain have been received.
CREATE TABLE fleet_sites (
    site text PRIMARY KEY CHECK (site <> ''),
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seq bigint NOT NULL DEFAULT 0,
    last_digest text NOT NULL DEFAULT '',
    audit_seq bigint NOT NULL DEFAULT 0,
    audit_hash text NOT NULL DEFAULT '',
    default_law text NOT NULL DEFAULT 'one_party',
    last_exported_at timestamptz
);

-- Every outbox event, once, in order: (site, seq) is the key; the body is the event's JSON as
-- sent (numbers of callers and callees hashed when the site says export.redact).
CREATE TABLE fleet_events (
    site text NOT NULL REFERENCES fleet_sites (site),
    seq bigint NOT NULL CHECK (seq > 0),
    kind text NOT NULL,
    at timestamptz NOT NULL,
    digest text NOT NULL,
    body text NOT NULL,
    exported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, seq)
);

-- Each recording as last reported (its summary: metadata, score, consent, state).
CREATE TABLE fleet_recordings (
    site text NOT NULL REFERENCES fleet_sites (site),
    id bigint NOT NULL,
    seq bigint NOT NULL,
    started_ms bigint NOT NULL,
    started timestamptz NOT NULL,
    day date NOT NULL,
    state text NOT NULL,
    agent text,
    queue text,
    score integer,
    grade text,
    consent text,
    consent_law text,
    lawful boolean NOT NULL,
    talk_s double precision,
    hold_s double precision,
    call_id text,
    held boolean NOT NULL DEFAULT false,
    summary jsonb NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE INDEX fleet_recordings_day ON fleet_recordings (day, site);
CREATE INDEX fleet_recordings_started ON fleet_recordings (site, started_ms);
CREATE INDEX fleet_recordings_agent ON fleet_recordings (site, agent, day);
CREATE INDEX fleet_recordings_queue ON fleet_recordings (site, queue, day);
CREATE INDEX fleet_recordings_call ON fleet_recordings (site, call_id) WHERE call_id IS NOT NULL;

-- Each recording's consent as it stands.
CREATE TABLE fleet_consent (
    site text NOT NULL REFERENCES fleet_sites (site),
    id bigint NOT NULL,
    seq bigint NOT NULL,
    state text,
    law text,
    lawful boolean NOT NULL,
    PRIMARY KEY (site, id)
);

CREATE TABLE fleet_holds (
    site text NOT NULL REFERENCES fleet_sites (site),
    id bigint NOT NULL,
    seq bigint NOT NULL,
    case_id text NOT NULL,
    reason text NOT NULL,
    actor text NOT NULL,
    added timestamptz NOT NULL,
    released timestamptz,
    recordings bigint NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (site, id)
);

-- The proof of each deletion: the tombstone, once per recording.
CREATE TABLE fleet_purges (
    site text NOT NULL REFERENCES fleet_sites (site),
    id bigint NOT NULL,
    seq bigint NOT NULL,
    deleted timestamptz NOT NULL,
    day date NOT NULL,
    rule text NOT NULL,
    reason text NOT NULL,
    actor text NOT NULL,
    scope text NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE INDEX fleet_purges_day ON fleet_purges (day, site);

-- Call records (CDR legs) as the site holds them.
CREATE TABLE fleet_calls (
    site text NOT NULL REFERENCES fleet_sites (site),
    id text NOT NULL,
    seq bigint NOT NULL,
    call_key text NOT NULL,
    started_ms bigint NOT NULL,
    started timestamptz NOT NULL,
    day date NOT NULL,
    disposition text NOT NULL,
    billsec integer NOT NULL,
    queue text,
    body jsonb NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE INDEX fleet_calls_day ON fleet_calls (day, site);
CREATE INDEX fleet_calls_key ON fleet_calls (site, call_key);
CREATE INDEX fleet_calls_started ON fleet_calls (site, started_ms);

-- The site's audit chain, entry by entry; `entry` is the entry's JSON exactly as the site
-- hashed it, so `fleet verify` checks every hash and link here.
CREATE TABLE fleet_audit (
    site text NOT NULL REFERENCES fleet_sites (site),
    seq bigint NOT NULL CHECK (seq > 0),
    time timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    recording bigint,
    prev text NOT NULL,
    hash text NOT NULL,
    entry text NOT NULL,
    PRIMARY KEY (site, seq)
);
CREATE INDEX fleet_audit_recording ON fleet_audit (site, recording) WHERE recording IS NOT NULL;

-- The heads the site anchored here: a site that rewrites its history after sending one is
-- caught by `fleet verify`.
CREATE TABLE fleet_heads (
    site text NOT NULL REFERENCES fleet_sites (site),
    event_seq bigint NOT NULL,
    audit_seq bigint NOT NULL,
    hash text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (site, event_seq)
);

-- Fleet KPIs (UTC days) for Grafana and SQL users; `callwarden fleet kpi` computes the same
-- from the summaries with the site's own code.
CREATE VIEW fleet_quality_daily AS
SELECT site, day, coalesce(queue, '') AS queue, coalesce(agent, '') AS agent,
       count(*) AS recordings,
       count(score) AS scored,
       avg(score)::double precision AS mean_score,
       count(*) FILTER (WHERE grade IN ('poor', 'bad')) AS poor,
       coalesce(sum(talk_s), 0) AS talk_s,
       coalesce(sum(hold_s), 0) AS hold_s
FROM fleet_recordings
WHERE state <> 'purged'
GROUP BY site, day, coalesce(queue, ''), coalesce(agent, '');

CREATE VIEW fleet_lawful_daily AS
SELECT site, day, coalesce(queue, '') AS queue, coalesce(agent, '') AS agent,
       count(*) AS recordings,
       count(*) FILTER (WHERE lawful) AS lawful,
       count(*) FILTER (WHERE NOT lawful) AS unlawful,
       (count(*) FILTER (WHERE lawful))::double precision / count(*) AS lawful_ratio
FROM fleet_recordings
WHERE state <> 'purged'
GROUP BY site, day, coalesce(queue, ''), coalesce(agent, '');

-- Answered calls with a recording that names them (by the recording's call id); the site's
-- own `report coverage` matches by every key and by time as well.
CREATE VIEW fleet_coverage_daily AS
SELECT c.site, c.day,
       count(DISTINCT c.call_key) AS calls,
       count(DISTINCT c.call_key) FILTER (WHERE EXISTS (
           SELECT 1 FROM fleet_recordings r
           WHERE r.site = c.site AND r.call_id IN (c.call_key, c.id))) AS recorded,
       (count(DISTINCT c.call_key) FILTER (WHERE EXISTS (
           SELECT 1 FROM fleet_recordings r
           WHERE r.site = c.site AND r.call_id IN (c.call_key, c.id))))::double precision
         / nullif(count(DISTINCT c.call_key), 0) AS coverage_ratio
FROM fleet_calls c
WHERE c.disposition = 'answered'
GROUP BY c.site, c.day;

CREATE VIEW fleet_purges_daily AS
SELECT site, day, count(*) AS purges,
       count(*) FILTER (WHERE scope = 'audio') AS audio_only,
       count(*) FILTER (WHERE scope = 'audio_and_metadata') AS audio_and_metadata
FROM fleet_purges
GROUP BY site, day;

CREATE VIEW fleet_export_status AS
SELECT s.site, s.last_seq, s.last_exported_at,
       h.audit_seq AS last_head_seq, h.at AS last_head_at,
       extract(epoch FROM now() - s.last_exported_at)::double precision AS lag_s
FROM fleet_sites s
LEFT JOIN LATERAL (
    SELECT audit_seq, at FROM fleet_heads WHERE site = s.site ORDER BY event_seq DESC LIMIT 1
) h ON true;
