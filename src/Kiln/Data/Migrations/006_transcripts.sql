-- Transcripts (docs/transcription.md): versions per asset, AUTO from a provider or MANUAL from a person; at most
-- one active. Segments are a JSON array of {start, end, text} in seconds.
create table transcripts (
    asset_id    uuid not null references assets (id) on delete cascade,
    version     integer not null check (version > 0),
    source      text not null check (source in ('AUTO', 'MANUAL')),
    is_active   boolean not null default false,
    language    text,
    text        text not null,
    segments    jsonb not null default '[]',
    provider    text,
    model       text,
    job_id      uuid,
    created_at  timestamptz not null default now(),
    created_by  uuid,
    primary key (asset_id, version)
);
create unique index transcripts_one_active on transcripts (asset_id) where is_active;
