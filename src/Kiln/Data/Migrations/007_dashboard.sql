-- The dashboard's server side (issue 10): when a key was last used, for the keys page, and tus resumable uploads
-- (docs/api.md). A tus upload's bytes live in tmp/tus/{id}.part under the data directory; the file's length is the
-- upload offset, so it is never out of step with the bytes actually received. The row keeps what must survive a
-- restart: owner, declared length, metadata, expiry, and the asset the upload became.

alter table api_keys add column last_used_at timestamptz;

create table tus_uploads (
    id            uuid primary key,
    owner_id      uuid not null references api_keys (id) on delete cascade,
    length        bigint not null check (length > 0),
    file_name     text not null,
    category      text,
    tags          text[] not null default '{}',
    settings      jsonb,
    created_at    timestamptz not null,
    expires_at    timestamptz not null,
    completed_at  timestamptz,
    asset_id      uuid references assets (id) on delete set null
);
create index tus_uploads_expiry on tus_uploads (expires_at);
create index tus_uploads_open_by_owner on tus_uploads (owner_id) where completed_at is null;
