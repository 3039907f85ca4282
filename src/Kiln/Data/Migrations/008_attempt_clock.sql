-- Attempt history on the application's clock (issue 9): every job transition takes its time as @now from the
-- injected TimeProvider (Queue/JobStates), so the history triggers of 004 must not stamp their rows with the
-- database's now(). A lease's start is the job's started_at (set by the lease); its end is lease_ended_at, set by
-- every statement that ends a lease and cleared by the next lease. A statement that ends a lease without saying when
-- (none in Kiln; a hand-written fix-up) still gets the database's time rather than a stale one.
alter table jobs add column lease_ended_at timestamptz;

create or replace function kiln_job_attempt() returns trigger language plpgsql as $$
begin
    if old.lease_id is not null then
        update job_attempts set
            finished_at = coalesce(new.lease_ended_at, now()),
            outcome = case
                when new.state in ('completed', 'cancelled', 'paused') then new.state
                when new.state = 'queued' and new.attempts < old.attempts then 'released'  -- given back uncounted
                else 'failed' end,
            error_code = case when new.state in ('failed', 'queued') and new.attempts >= old.attempts then new.error_code end,
            error_message = case when new.state in ('failed', 'queued') and new.attempts >= old.attempts then new.error_message end
        where job_id = old.id and lease_id = old.lease_id;
    end if;
    if new.lease_id is not null then
        insert into job_attempts (job_id, lease_id, attempt, worker, started_at)
        values (new.id, new.lease_id, new.attempts, new.lease_owner, coalesce(new.started_at, now()))
        on conflict do nothing;
    end if;
    return null;
end $$;

-- A queue's first rate window opens at its first lease, on the application's clock (QueueBudget), not at the
-- database's time of the row's creation.
alter table queues alter column rate_window_start set default 'epoch';
