-- src/sites/jma_codes.sql — loading JMA's station → municipality → area
-- table.  Written with CREATE OR REPLACE: an upgrade script can replay the same
-- text.  (0.10.1 replaced a temporary table with a function that each
-- statement reads: no function of the extension makes, reuses or names a
-- temporary object.)

-- The lines of JMA's table with what is wrong with each (NULL: nothing).
CREATE OR REPLACE FUNCTION status_checker._jma_rows(csv text)
    RETURNS TABLE (line integer, fields text[], problem text)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.line, r.fields,
           CASE WHEN r.error IS NOT NULL THEN r.error
                WHEN cardinality(r.fields) <> 9 THEN format('has %s fields, expected 9', cardinality(r.fields))
                WHEN r.fields[1] !~ '^[0-9]{3}$' THEN format('area code %L is not 3 digits', r.fields[1])
                WHEN r.fields[4] !~ '^[0-9]{7}$' THEN format('municipality code %L is not 7 digits', r.fields[4])
                WHEN r.fields[7] !~ '^[0-9]{7}$' THEN format('station code %L is not 7 digits', r.fields[7])
                WHEN r.fields[2] = '' OR r.fields[5] = '' OR r.fields[8] = '' THEN 'has an empty name'
           END
    FROM status_checker._csv_records(convert_to(csv, 'UTF8')) r
$$;
COMMENT ON FUNCTION status_checker._jma_rows(text) IS
'Internal (load_jma_area_codes): the lines of JMA''s area table, each with its problem or NULL';

CREATE OR REPLACE FUNCTION status_checker.load_jma_area_codes(csv text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    problems text[];
    n integer;
BEGIN
    PERFORM status_checker._no_nulls('load_jma_area_codes', ARRAY['csv'], ARRAY[load_jma_area_codes.csv::text]);
    -- a municipality belongs to exactly one area
    WITH j AS MATERIALIZED (SELECT * FROM status_checker._jma_rows(load_jma_area_codes.csv))
    SELECT ARRAY(
        SELECT format('line %s: %s', j.line, j.problem) FROM j WHERE j.problem IS NOT NULL
        UNION ALL
        SELECT format('municipality %s is listed under areas %s', m.code, m.areas)
        FROM (SELECT fields[4] AS code, string_agg(DISTINCT fields[1], ', ') AS areas
              FROM j WHERE problem IS NULL GROUP BY 1 HAVING count(DISTINCT fields[1]) > 1) m
        UNION ALL
        SELECT format('station %s is listed %s times', s.code, s.n)
        FROM (SELECT fields[7] AS code, count(*) AS n
              FROM j WHERE problem IS NULL GROUP BY 1 HAVING count(*) > 1) s
        LIMIT 1000),
        (SELECT count(*) FROM j)
    INTO problems, n;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'load_jma_area_codes: % problem(s); nothing was loaded', cardinality(problems)
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = array_to_string(problems, E'\n'),
                  HINT = 'Expected JMA''s table without header: area code, area name, kana, municipality code, name, kana, station code, name, kana.';
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'load_jma_area_codes: the input has no rows'
            USING ERRCODE = 'invalid_text_representation';
    END IF;

    -- the new table replaces the old one
    DELETE FROM status_checker.jma_station;
    DELETE FROM status_checker.jma_municipality;
    DELETE FROM status_checker.jma_area;
    INSERT INTO status_checker.jma_area (code, name, kana)
    SELECT DISTINCT ON (fields[1]) fields[1], fields[2], fields[3]
    FROM status_checker._jma_rows(load_jma_area_codes.csv) ORDER BY fields[1], line;
    INSERT INTO status_checker.jma_municipality (code, name, kana, area_code)
    SELECT DISTINCT ON (fields[4]) fields[4], fields[5], fields[6], fields[1]
    FROM status_checker._jma_rows(load_jma_area_codes.csv) ORDER BY fields[4], line;
    INSERT INTO status_checker.jma_station (code, name, kana, municipality_code)
    SELECT fields[7], fields[8], fields[9], fields[4] FROM status_checker._jma_rows(load_jma_area_codes.csv);
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.load_jma_area_codes(text) IS
'Load (replace) JMA''s station → municipality → area table (AreaForecastLocalE / AreaInformationCity / PointSeismicIntensity CSV); returns the rows loaded. All or nothing';
GRANT EXECUTE ON FUNCTION status_checker.load_jma_area_codes(text) TO status_checker_api, status_checker_operator;
