-- src/common/schema.sql — preconditions and shared helpers.
--
-- Everything lives in schema status_checker (created by CREATE EXTENSION,
-- see status_checker.control).  Japanese text is first-class, so the
-- database must use UTF-8.

DO $$
BEGIN
    IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'status_checker needs a UTF8 database, this one is %',
            pg_catalog.current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE DATABASE ... ENCODING ''UTF8'' TEMPLATE template0';
    END IF;
END
$$;

-- RFC 4180 CSV reader (src/common/csv.c).  One row per record; a bad record
-- (bad UTF-8, NUL byte, unterminated quote) comes back with fields NULL and
-- the reason in error, so that callers can list every bad line at once.
CREATE FUNCTION status_checker._csv_records(data bytea,
    OUT line integer, OUT fields text[], OUT error text)
    RETURNS SETOF record
    LANGUAGE c STRICT VOLATILE SECURITY INVOKER PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'sc_csv_records';

-- Raise 22004 naming the first NULL argument.  Functions that change data
-- call it instead of being STRICT, which would silently do nothing.
CREATE FUNCTION status_checker._no_nulls(fn text, names text[], vals text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    FOR i IN 1 .. cardinality(names) LOOP
        IF vals[i] IS NULL THEN
            RAISE EXCEPTION '%: % must not be NULL', fn, names[i]
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
    END LOOP;
END
$$;
