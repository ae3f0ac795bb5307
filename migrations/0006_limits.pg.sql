-- 0006_limits.pg.sql: on PostgreSQL, 0006_limits.sql is part of 0001_core.pg.sql.
SELECT 1;
