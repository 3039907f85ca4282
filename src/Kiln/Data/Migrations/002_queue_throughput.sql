-- Queue throughput: fewer index entries written per job state change, and indexes the queue's own deletes need.

-- Most jobs (benchmarks, fetches) and every finished job pruned by retention pay for each index on every state
-- change, because a state change is never a HOT update. Jobs without an asset need no entry.
drop index jobs_asset;
create index jobs_asset on jobs (asset_id) where asset_id is not null;

-- Listing by creation time uses the primary key (ids are UUIDv7, creation-ordered) instead of its own index.
drop index jobs_list;

-- Retention deletes every job in the end. A foreign key pointing at jobs runs a trigger (a query) per deleted row:
-- measured, that made a prune cost more than the job's whole life in the queue. Neither reference needs the database
-- to keep it: a derivative's job_id is history (the job may be pruned), and a parent is only pruned once finished, when
-- its children were already released or failed with it; enqueueing a child of a missing parent fails the child.
alter table derivatives drop constraint derivatives_job_id_fkey;
alter table jobs drop constraint jobs_parent_id_fkey;

-- A rate window opens at the first lease after it is due, not when the queue row was made.
alter table queues alter column rate_window_start set default 'epoch';
