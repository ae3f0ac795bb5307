-- 0003_waits.pg.sql: on PostgreSQL, 0003_waits.sql is part of 0001_core.pg.sql.
SELECT 1;
