-- Queue throughput: fewer index entries written per job state change, and indexes the queue's own deletes need.

-- Most jobs (benchmarks, fetches) and every finished job pruned by retention pay for each index on every state
-- change, because a state change is never a HOT update. Jobs without an asset need no entry.
drop index jobs_asset;
create index jobs_asset on jobs (asset_id) where asset_id is not null;

-- Listing by creation time uses the primary key (ids are UUIDv7, creation-ordered) instead of its own index.
drop index jobs_list;

-- Retention deletes jobs; derivatives.job_id references them (on delete set null), which needs an index to be cheap.
create index derivatives_job on derivatives (job_id) where job_id is not null;

-- A rate window opens at the first lease after it is due, not when the queue row was made.
alter table queues alter column rate_window_start set default 'epoch';
