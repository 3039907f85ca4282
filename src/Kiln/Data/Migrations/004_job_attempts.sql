-- Attempt history (issue 9): one row per lease a job was given, so an attempt's error survives the next attempt.
-- Written by triggers rather than by each statement that changes a lease: leasing, completion, failure, release,
-- lease expiry, stalls, cancel and pause all set lease_id, so every path records its attempt the same way.
create table job_attempts (
    job_id        uuid not null,
    lease_id      uuid not null,
    attempt       integer not null,
    worker        text,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    outcome       text,          -- null while running; completed, failed, cancelled, paused or released
    error_code    text,
    error_message text,
    primary key (job_id, lease_id)
);

-- A lease granted, ended, or both (one statement may end one lease and grant the next).
create function kiln_job_attempt() returns trigger language plpgsql as $$
begin
    if old.lease_id is not null then
        update job_attempts set
            finished_at = now(),
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
        values (new.id, new.lease_id, new.attempts, new.lease_owner, now())
        on conflict do nothing;
    end if;
    return null;
end $$;

-- "update of lease_id": progress writes and heartbeats never set lease_id, so the hot path does not even test the condition.
create trigger jobs_attempt after update of lease_id on jobs
    for each row when (old.lease_id is distinct from new.lease_id) execute function kiln_job_attempt();

-- History goes with its job (retention, queue clean, an asset's deletion). Not a foreign key: that runs a query per
-- deleted job (see 002); this runs one per statement over all the deleted rows.
create function kiln_job_attempts_prune() returns trigger language plpgsql as $$
begin
    delete from job_attempts a using gone g where a.job_id = g.id;
    return null;
end $$;

create trigger jobs_attempts_prune after delete on jobs
    referencing old table as gone for each statement execute function kiln_job_attempts_prune();
