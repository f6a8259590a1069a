-- postgres_exporter's own role in an environment's database. init_setup.sh runs this with psql in
-- the database's container, on stdin after `\set pw <password>` (so the password is in no command
-- line), on every run: the role is created once, and its password set to the one in the
-- exporter's password file each time (a restored or replaced database gets it back).
-- pg_monitor reads the statistics views and settings of every session; the role owns nothing,
-- reads no table of the app's and writes nothing.
-- The password is in the ALTER ROLE statement: this session logs no statement, even failed ones.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT 'CREATE ROLE berth_monitor' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'berth_monitor') \gexec
ALTER ROLE berth_monitor WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 3 PASSWORD :'pw';
GRANT pg_monitor TO berth_monitor;
