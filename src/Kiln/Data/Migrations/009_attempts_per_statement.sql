-- Attempt history written once per statement instead of once per row (issue 14): the row trigger of 004/008 ran a
-- PL/pgSQL call and an insert or update per leased or completed job, about a sixth of PostgreSQL's CPU in the queue's
-- throughput run. A statement trigger sees every row the statement changed through its transition tables and
-- records the attempts they began or ended in one insert and one update. A trigger with transition tables cannot
-- name columns ("update of lease_id"), so every update of jobs calls it, progress writes, heartbeats and maintenance
-- included, and those find nothing to record: microseconds per statement, and progress is written at most a few
-- times a second per job (Kiln:Queue:MaxProgressWritesPerSecond). docs/decisions.md has the measurements.
drop trigger jobs_attempt on jobs;
drop function kiln_job_attempt();

-- Its queries are planned once, at the first call, when the transition tables may hold one row: with nested loops
-- allowed, that plan compared every old row with every new one (77 x 77 per batch, 6 ms). Hash joins instead, and the
-- history rows found through their primary key by an array of job ids, the way the queue's own statements do.
create function kiln_job_attempts() returns trigger language plpgsql set enable_nestloop = off as $$
begin
    -- The leases that ended: close their attempt (a lease's end is lease_ended_at, on the application's clock; see 008).
    with ended as materialized (
        select o.id, o.lease_id, o.attempts as old_attempts, n.state, n.attempts, n.error_code, n.error_message, n.lease_ended_at
        from old_jobs o join new_jobs n on n.id = o.id
        where o.lease_id is not null and n.lease_id is distinct from o.lease_id
    )
    update job_attempts a set
        finished_at = coalesce(e.lease_ended_at, now()),
        outcome = case
            when e.state in ('completed', 'cancelled', 'paused') then e.state
            when e.state = 'queued' and e.attempts < e.old_attempts then 'released'  -- given back uncounted
            else 'failed' end,
        error_code = case when e.state in ('failed', 'queued') and e.attempts >= e.old_attempts then e.error_code end,
        error_message = case when e.state in ('failed', 'queued') and e.attempts >= e.old_attempts then e.error_message end
    from ended e
    where a.job_id = any(array(select id from ended)) and a.job_id = e.id and a.lease_id = e.lease_id;
    -- The leases granted (one statement may end one lease and grant the next).
    insert into job_attempts (job_id, lease_id, attempt, worker, started_at)
    select n.id, n.lease_id, n.attempts, n.lease_owner, coalesce(n.started_at, now())
    from new_jobs n join old_jobs o on o.id = n.id
    where n.lease_id is not null and n.lease_id is distinct from o.lease_id
    on conflict do nothing;
    return null;
end $$;

create trigger jobs_attempts after update on jobs
    referencing old table as old_jobs new table as new_jobs
    for each statement execute function kiln_job_attempts();
