-- Remote workers (docs/workers.md): which workers are connected to which node, and the secret that signs the
-- per-job tokens workers use to fetch inputs and upload outputs. Shared by every node on this database.

create table workers (
    id               text primary key,        -- the connection's lease owner, e.g. remote:gpu-1@node-a#3f2a9c1e
    name             text not null,
    version          text not null,
    key_id           uuid not null references api_keys (id) on delete cascade,
    node             text not null,
    kinds            text[] not null,
    slots            integer not null check (slots > 0),
    remote_address   text,
    connected_at     timestamptz not null default now(),
    last_seen_at     timestamptz not null default now(),
    disconnected_at  timestamptz
);
create index workers_live on workers (last_seen_at desc) where disconnected_at is null;

create table server_secrets (
    name        text primary key,
    value       bytea not null,
    created_at  timestamptz not null default now()
);
