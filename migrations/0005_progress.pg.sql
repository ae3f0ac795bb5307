-- 0005_progress.pg.sql: on PostgreSQL, 0005_progress.sql is part of 0001_core.pg.sql.
SELECT 1;
