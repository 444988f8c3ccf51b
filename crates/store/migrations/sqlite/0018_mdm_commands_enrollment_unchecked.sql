-- Nothing changes on SQLite: a command's enrollment keeps its foreign key, whose check is an
-- index probe here (PostgreSQL drops it, see its migration 0018).
SELECT 1;
