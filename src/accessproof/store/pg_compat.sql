-- DuckDB behaviour PostgreSQL lacks, for SQL that store.dialect.to_backend translates from DuckDB.
-- Created in the store's schema by store.dialect.install_compat (idempotent; reinstalled when this file
-- changes). Each function does exactly what DuckDB does, so that the same query gives the same text:
-- finding ids and reasons are built from these strings. Tests compare them with DuckDB value by value.

-- A DOUBLE as DuckDB prints it: the shortest digits that read back to the same value (PostgreSQL's own
-- output), laid out as DuckDB lays them out. As text (a cast to VARCHAR, like Python's repr): '24.0' not
-- '24', '1e+16' from 16 digits on, '0.0001' but '1e-05', 'nan', 'inf'. In JSON (json_object, to_json):
-- fixed from 1e-6 to below 1e21 ('10000000000000000.0'), else '1e-7', '1e21'; 'NaN', 'Infinity'.
CREATE OR REPLACE FUNCTION duckdb_float_text(x double precision, json boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET extra_float_digits = 1 AS $$
DECLARE
  s text := x::text;
  sign text := '';
  m text;
  e integer := 0;
  digits text;
  point integer;
  lead integer;
  sci integer;
  cand text;
BEGIN
  IF s = 'NaN' THEN RETURN CASE WHEN json THEN 'NaN' ELSE 'nan' END; END IF;
  IF s = 'Infinity' THEN RETURN CASE WHEN json THEN 'Infinity' ELSE 'inf' END; END IF;
  IF s = '-Infinity' THEN RETURN CASE WHEN json THEN '-Infinity' ELSE '-inf' END; END IF;
  IF left(s, 1) = '-' THEN
    sign := '-';
    s := substr(s, 2);
  END IF;
  m := split_part(s, 'e', 1);
  IF strpos(s, 'e') > 0 THEN
    e := split_part(s, 'e', 2)::integer;
  END IF;
  digits := split_part(m, '.', 1) || split_part(m, '.', 2);
  point := length(split_part(m, '.', 1)) + e;  -- the decimal point follows this many digits
  lead := length(digits) - length(ltrim(digits, '0'));
  digits := rtrim(ltrim(digits, '0'), '0');
  IF digits = '' THEN
    RETURN sign || '0.0';
  END IF;
  point := point - lead;
  -- from 2^53 on PostgreSQL may print a digit more than DuckDB, which also takes a decimal lying exactly
  -- between two doubles when round-half-even reads it back: fewer digits while they read back
  WHILE length(digits) >= 16 LOOP
    cand := round(digits::numeric / 10)::text;
    BEGIN
      EXIT WHEN (cand || 'e' || (point - length(digits) + 1))::double precision <> abs(x);
    EXCEPTION WHEN numeric_value_out_of_range THEN
      EXIT;
    END;
    point := point - length(digits) + 1 + length(cand);
    digits := rtrim(cand, '0');
  END LOOP;
  sci := point - 1;
  IF json AND (sci < -6 OR sci >= 21) THEN
    RETURN sign || left(digits, 1) || CASE WHEN length(digits) > 1 THEN '.' || substr(digits, 2) ELSE '' END
           || 'e' || sci::text;
  ELSIF NOT json AND (sci < -4 OR sci >= 16) THEN
    RETURN sign || left(digits, 1) || CASE WHEN length(digits) > 1 THEN '.' || substr(digits, 2) ELSE '' END
           || 'e' || CASE WHEN sci < 0 THEN '-' ELSE '+' END || CASE WHEN abs(sci) < 10 THEN '0' ELSE '' END
           || abs(sci)::text;
  ELSIF point <= 0 THEN
    RETURN sign || '0.' || repeat('0', -point) || digits;
  ELSIF point >= length(digits) THEN
    RETURN sign || digits || repeat('0', point - length(digits)) || '.0';
  END IF;
  RETURN sign || left(digits, point) || '.' || substr(digits, point + 1);
END
$$;

CREATE OR REPLACE FUNCTION duckdb_text(x double precision) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT duckdb_float_text(x, false) $$;

-- Every other type prints as PostgreSQL prints it (the same as DuckDB for text, integers, decimals,
-- booleans, dates and timestamps in ISO style and the same time zone). Exact-type overloads, because an
-- integer would otherwise be widened to the double version.
CREATE OR REPLACE FUNCTION duckdb_text(x text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x $$;
CREATE OR REPLACE FUNCTION duckdb_text(x smallint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_text(x integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_text(x bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_text(x numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_text(x real) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT duckdb_float_text(x::text::double precision, false) $$;
CREATE OR REPLACE FUNCTION duckdb_text(x bytea) RETURNS text  -- printable ASCII, else \xHH (quotes too)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(CASE WHEN b BETWEEN 32 AND 126 AND b NOT IN (34, 39, 92) THEN chr(b)
                                  ELSE '\x' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
  FROM generate_series(0, length(x) - 1) AS i, LATERAL get_byte(x, i) AS b
$$;
CREATE OR REPLACE FUNCTION duckdb_text(x anyelement) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT x::text $$;

-- round(DOUBLE, n) as DuckDB rounds: the exact binary value, half away from zero (0.15 is stored as
-- 0.1499… and rounds to 0.1). PostgreSQL has no round for double precision with digits, and a detour
-- through numeric rounds the 15-digit decimal instead.
CREATE OR REPLACE FUNCTION round(x double precision, n integer) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  bits bigint;
  e integer;
  m numeric;
  scaled numeric;
  den numeric;
BEGIN
  IF x = 0 OR x = 'NaN'::double precision OR x = 'Infinity'::double precision
     OR x = '-Infinity'::double precision THEN
    RETURN x;
  END IF;
  bits := ('x' || encode(float8send(x), 'hex'))::bit(64)::bigint;
  e := ((bits >> 52) & 2047)::integer;
  m := (bits & 4503599627370495)::numeric;
  IF e = 0 THEN
    e := 1;  -- subnormal
  ELSE
    m := m + 4503599627370496;
  END IF;
  -- |x| = m * 2^(e - 1075) exactly
  IF e >= 1075 AND n >= 0 THEN
    RETURN x;  -- an integer: nothing after the point to round
  END IF;
  IF e >= 1075 THEN
    scaled := m * power(2::numeric, e - 1075) * power(10::numeric, n);
    den := 1;
  ELSE
    scaled := m * power(10::numeric, n);
    den := power(2::numeric, 1075 - e);
  END IF;
  RETURN sign(x) * (div(2 * scaled + den, 2 * den) / power(10::numeric, n))::double precision;
END
$$;

-- regexp_extract(string, pattern[, group]): DuckDB's (RE2), '' when nothing matches.
CREATE OR REPLACE FUNCTION re2_to_are(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
-- RE2's escapes PostgreSQL spells differently: \b word boundary (\y), \B (\Y), \z end of text (\Z)
DECLARE
  out text := '';
  i integer := 1;
  c text;
  nxt text;
BEGIN
  WHILE i <= length(p) LOOP
    c := substr(p, i, 1);
    IF c = '\' AND i < length(p) THEN
      nxt := substr(p, i + 1, 1);
      out := out || CASE nxt WHEN 'b' THEN '\y' WHEN 'B' THEN '\Y' WHEN 'z' THEN '\Z' ELSE c || nxt END;
      i := i + 2;
    ELSE
      out := out || c;
      i := i + 1;
    END IF;
  END LOOP;
  RETURN out;
END
$$;

CREATE OR REPLACE FUNCTION regexp_extract(s text, p text, g integer DEFAULT 0) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce((regexp_match(s, '(' || re2_to_are(p) || ')'))[g + 1], '')
$$;

-- sha256 of text (DuckDB hashes the UTF-8 bytes; PostgreSQL's sha256 takes bytea).
CREATE OR REPLACE FUNCTION sha256(s text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT sha256(convert_to(s, 'UTF8')) $$;

-- list_distinct drops NULLs; list_sort sorts ascending, NULLs last, text by bytes as DuckDB compares it.
CREATE OR REPLACE FUNCTION list_distinct(a anyarray) RETURNS anyarray
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array(SELECT DISTINCT v FROM unnest(a) v WHERE v IS NOT NULL)
$$;
CREATE OR REPLACE FUNCTION list_sort(a anyarray) RETURNS anyarray
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array(SELECT v FROM unnest(a) v ORDER BY v NULLS LAST)
$$;
CREATE OR REPLACE FUNCTION list_sort(a text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array(SELECT v FROM unnest(a) v ORDER BY v COLLATE "C" NULLS LAST)
$$;

-- A value as DuckDB writes it into JSON (json_object, to_json): strings escaped with upper-case hex,
-- doubles in DuckDB's JSON layout, decimals without trailing zeros, timestamps as their text.
CREATE OR REPLACE FUNCTION duckdb_json(x text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  out text := '"';
  c text;
  code integer;
BEGIN
  IF x !~ '[\x01-\x1f]' THEN
    RETURN to_json(x)::text;  -- nothing PostgreSQL escapes differently
  END IF;
  FOR i IN 1..length(x) LOOP
    c := substr(x, i, 1);
    code := ascii(c);
    out := out || CASE
      WHEN c = '"' THEN '\"' WHEN c = '\' THEN '\\'
      WHEN code = 8 THEN '\b' WHEN code = 12 THEN '\f' WHEN code = 10 THEN '\n' WHEN code = 13 THEN '\r'
      WHEN code = 9 THEN '\t' WHEN code < 32 THEN '\u' || upper(lpad(to_hex(code), 4, '0'))
      ELSE c END;
  END LOOP;
  RETURN out || '"';
END
$$;
CREATE OR REPLACE FUNCTION duckdb_json(x double precision) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT duckdb_float_text(x, true) $$;
CREATE OR REPLACE FUNCTION duckdb_json(x smallint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x numeric) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT trim_scale(x)::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x boolean) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x json) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT x::text $$;
CREATE OR REPLACE FUNCTION duckdb_json(x text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT '[' || coalesce(string_agg(coalesce(duckdb_json(v), 'null'), ',' ORDER BY i), '') || ']'
  FROM unnest(x) WITH ORDINALITY AS u(v, i)
$$;
CREATE OR REPLACE FUNCTION duckdb_json(x anyelement) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$ SELECT duckdb_json(x::text) $$;

-- json_object(key, value, …) as DuckDB builds it: no spaces, values as above, NULL as null. Called with
-- each value already through duckdb_json (store.dialect does that).
CREATE OR REPLACE FUNCTION duckdb_json_object(VARIADIC kv text[]) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ('{' || coalesce(string_agg(duckdb_json(kv[i]) || ':' || coalesce(kv[i + 1], 'null'), ',' ORDER BY i), '')
          || '}')::json
  FROM generate_subscripts(kv, 1) AS i WHERE i % 2 = 1
$$;
