-- Kiln's first schema. PostgreSQL is both the system of record and the queue:
-- the job row is the queue entry, so there is never a dual write to a broker.

create table api_keys (
    id          uuid primary key,
    name        text not null,
    role        text not null check (role in ('admin', 'client', 'worker')),
    key_hash    bytea not null unique,
    prefix      text not null,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

create table queues (
    name             text primary key,
    concurrency      integer not null default 0 check (concurrency >= 0),   -- 0 = no global cap
    rate_max         integer not null default 0 check (rate_max >= 0),      -- 0 = no rate limit
    rate_period_ms   integer not null default 1000 check (rate_period_ms > 0),
    rate_window_start timestamptz not null default now(),
    rate_count       integer not null default 0,
    paused           boolean not null default false,
    keep_completed   integer not null default 1000 check (keep_completed >= 0),
    keep_failed      integer not null default 200 check (keep_failed >= 0)
);

create table assets (
    id             uuid primary key,
    owner_id       uuid not null references api_keys (id),
    kind           text not null check (kind in ('image', 'audio', 'video', 'other')),
    content_type   text not null,
    original_name  text not null,
    size           bigint not null,
    sha256         text,
    path           text not null,
    metadata       jsonb not null default '{}',
    category       text,
    tags           text[] not null default '{}',
    source         text not null default 'upload' check (source in ('upload', 'url')),
    source_url     text,
    created_at     timestamptz not null default now(),
    expires_at     timestamptz
);
create index assets_owner on assets (owner_id, created_at desc);
create index assets_expiry on assets (expires_at) where expires_at is not null;

create table batches (
    id          uuid primary key,
    owner_id    uuid not null references api_keys (id),
    pipeline    jsonb not null default '{}',
    created_at  timestamptz not null default now()
);

create table jobs (
    id                uuid primary key,
    asset_id          uuid references assets (id) on delete cascade,
    batch_id          uuid references batches (id) on delete set null,
    parent_id         uuid references jobs (id) on delete set null,  -- retention may prune a finished parent
    owner_id          uuid references api_keys (id),
    kind              text not null,
    queue             text not null,
    state             text not null check (state in ('waiting', 'queued', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    priority          integer not null default 10,
    run_at            timestamptz not null default now(),
    attempts          integer not null default 0,
    max_attempts      integer not null default 3 check (max_attempts >= 1),
    stage             text,
    progress          real not null default 0,
    speed             double precision,
    eta_seconds       double precision,
    total_bytes       bigint,
    params            jsonb not null default '{}',
    result            jsonb,
    error_code        text,
    error_message     text,
    lease_owner       text,
    lease_id          uuid,
    lease_expires_at  timestamptz,
    last_progress_at  timestamptz,
    pause_requested   boolean not null default false,
    created_at        timestamptz not null default now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
-- The dequeue path: only queued rows, in the order the queue promises.
create index jobs_dequeue on jobs (queue, priority, run_at, id) where state = 'queued';
create index jobs_running on jobs (queue, lease_expires_at) where state = 'running';
create index jobs_children on jobs (parent_id) where parent_id is not null;
create index jobs_asset on jobs (asset_id);
create index jobs_batch on jobs (batch_id) where batch_id is not null;
create index jobs_finished on jobs (queue, state, finished_at desc) where state in ('completed', 'failed', 'cancelled');
create index jobs_list on jobs (created_at desc, id desc);

create table derivatives (
    id            uuid primary key,
    asset_id      uuid not null references assets (id) on delete cascade,
    job_id        uuid references jobs (id) on delete set null,
    type          text not null,
    variant       text not null default '',
    path          text not null,
    content_type  text not null,
    size          bigint not null,
    width         integer,
    height        integer,
    duration      double precision,
    created_at    timestamptz not null default now(),
    unique (asset_id, type, variant)
);
