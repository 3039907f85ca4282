-- Attempt history written once per attempt and once per statement (issue 14). The row trigger of 004/008 ran a
-- PL/pgSQL call and a write per job twice per attempt: an insert when the lease began, an update when it ended. In the
-- queue's throughput run that was about a fifth of PostgreSQL's CPU per job. Now:
--   * an attempt's row is written once, complete, when its lease ends; while it runs, the job row itself is its
--     record (lease_id, attempts, lease_owner, started_at), and job_history shows both;
--   * a statement trigger sees every row the statement changed through its transition tables and writes the rows of
--     all the leases it ended in one insert.
-- A trigger with transition tables cannot name columns ("update of lease_id"), so every update of jobs calls it,
-- progress writes, heartbeats, leases and maintenance included; those end no lease and cost microseconds per statement.
-- docs/decisions.md has the measurements.
drop trigger jobs_attempt on jobs;
drop function kiln_job_attempt();

-- Its query is planned at the first call, often for one row: with nested loops allowed, that cached plan compared
-- every old row with every new one (77 x 77 for one completion batch, 6 ms). Hash joins instead.
create function kiln_job_attempts() returns trigger language plpgsql set enable_nestloop = off as $$
begin
    insert into job_attempts as a (job_id, lease_id, attempt, worker, started_at, finished_at, outcome, error_code, error_message)
    select o.id, o.lease_id, o.attempts, o.lease_owner, coalesce(o.started_at, now()),
        -- A lease's end is lease_ended_at, on the application's clock (see 008).
        coalesce(n.lease_ended_at, now()),
        case
            when n.state in ('completed', 'cancelled', 'paused') then n.state
            when n.state = 'queued' and n.attempts < o.attempts then 'released'  -- given back uncounted
            else 'failed' end,
        case when n.state in ('failed', 'queued') and n.attempts >= o.attempts then n.error_code end,
        case when n.state in ('failed', 'queued') and n.attempts >= o.attempts then n.error_message end
    from old_jobs o join new_jobs n on n.id = o.id
    where o.lease_id is not null and n.lease_id is distinct from o.lease_id
    -- A row opened by the trigger of 004/008 for a lease that outlived the upgrade: close it.
    on conflict (job_id, lease_id) do update set finished_at = excluded.finished_at, outcome = excluded.outcome,
        error_code = excluded.error_code, error_message = excluded.error_message
        where a.finished_at is null;
    return null;
end $$;

create trigger jobs_attempts after update on jobs
    referencing old table as old_jobs new table as new_jobs
    for each statement execute function kiln_job_attempts();

-- Every attempt of every job: those that ended, and the one running now (from its job row).
create view job_history as
select job_id, lease_id, attempt, worker, started_at, finished_at, outcome, error_code, error_message
from job_attempts
union all
select j.id, j.lease_id, j.attempts, j.lease_owner, coalesce(j.started_at, j.created_at), null, null, null, null
from jobs j
where j.lease_id is not null
    and not exists (select 1 from job_attempts a where a.job_id = j.id and a.lease_id = j.lease_id);
