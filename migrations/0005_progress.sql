-- 0005_progress.sql: a running job's progress (ctx.progress): a fraction
-- from 0 to 1 and a short message. The daemon writes it a few times a
-- second at most, fenced by the attempt's lease, and a claim that starts
-- a new attempt clears it (a run that continues a durable wait keeps it).
ALTER TABLE jobs ADD COLUMN progress REAL
  CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1));
ALTER TABLE jobs ADD COLUMN progress_msg TEXT;
