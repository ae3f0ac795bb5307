-- 0007_fanin.pg.sql: on PostgreSQL, 0007_fanin.sql is part of 0001_core.pg.sql.
SELECT 1;
