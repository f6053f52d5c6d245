-- JSON text of a history's values, built in the database, byte for byte what the API's orjson wrote for the same
-- Python values: a lot's history and a line's load (thousands of buckets) come out of one query as one text
-- value (api/queries/rollups.py), instead of rows parsed, rounded and serialised in Python.
--
-- json_number(x): a float as orjson writes it: the shortest digits that read back as x (PostgreSQL's float8
-- output, extra_float_digits >= 1, the default), plain from 1e-5 up to 1e16 with at least one decimal ("3.0",
-- "0.00001"), else with an exponent without leading zeros ("1e-7"); NaN and infinities as null. Beyond 1e16
-- PostgreSQL may write a whole number with more digits than orjson (the same value).
CREATE OR REPLACE FUNCTION json_number(p_x double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN abs(p_x) >= 1e-4 AND abs(p_x) < 1e15 THEN  -- plain already (NULL and NaN go on)
            p_x::text || CASE WHEN p_x = trunc(p_x) THEN '.0' ELSE '' END
        WHEN p_x IS NULL OR NOT abs(p_x) < 'Infinity' THEN 'null'
        WHEN p_x = 0 THEN CASE WHEN p_x::text = '-0' THEN '-0.0' ELSE '0.0' END
        WHEN abs(p_x) >= 1e-5 AND abs(p_x) < 1e16 THEN  -- the same digits, written out
            p_x::text::numeric::text || CASE WHEN p_x = trunc(p_x) THEN '.0' ELSE '' END
        ELSE regexp_replace(p_x::text, 'e([-+])0', 'e\1')
    END
$$;

-- Python's round(x, 2) (the nearest hundredth of x's exact value, ties to even), written as json_number writes
-- the float it returns. Exactly: x's exact value is m / 2^k for an integer m < 2^55 (k chosen from x's binary
-- exponent), so its hundredths are m * 100 / 2^k, an integer division with a remainder.
CREATE OR REPLACE FUNCTION json_round2_exact(p_x double precision) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    y double precision := abs(p_x);
    k integer;
    n bigint;
    q bigint;
    r bigint;
    half bigint;
BEGIN
    IF p_x IS NULL OR NOT y < 'Infinity' OR y >= 4503599627370496 THEN  -- 2^52 and beyond: whole numbers
        RETURN json_number(p_x);
    END IF;
    IF y < 0.004 THEN
        RETURN CASE WHEN p_x < 0 OR p_x::text = '-0' THEN '-0.0' ELSE '0.0' END;
    END IF;
    k := 53 - floor(ln(y) / ln(2.0::double precision))::integer;  -- the exponent's estimate is off by 1 at most
    n := (y * (1::bigint << k)::double precision)::bigint * 100;
    q := n >> k;
    r := n & ((1::bigint << k) - 1);
    half := 1::bigint << (k - 1);
    q := q + CASE WHEN r > half THEN 1 WHEN r < half THEN 0 ELSE q & 1 END;
    RETURN json_number(CASE WHEN p_x < 0 THEN -1 ELSE 1 END * (q::numeric * 0.01)::double precision);
END $$;

-- json_round2(x): the same; most values inline (positive, below 10^4 and far from a tie, where a float's
-- hundredths cannot round the other way), the rest through json_round2_exact.
CREATE OR REPLACE FUNCTION json_round2(p_x double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_x > 0 AND p_x < 1e4 AND abs(p_x * 100 - floor(p_x * 100) - 0.5) > 1e-6 THEN
            (floor(p_x * 100 + 0.5) / 100)::text
            || CASE WHEN floor(p_x * 100 + 0.5)::bigint % 100 = 0 THEN '.0' ELSE '' END
        WHEN p_x = 0 THEN CASE WHEN p_x::text = '-0' THEN '-0.0' ELSE '0.0' END
        ELSE json_round2_exact(p_x)  -- NULL, negative, near a tie, large, NaN, infinite
    END
$$;

-- json_time(t): t as orjson writes an aware datetime, in the session's time zone (the caller sets it for its
-- transaction): ISO 8601 with the offset, "Z" for a zero offset; fractions of a second as PostgreSQL writes them
-- (trailing zeros dropped, so callers pass instants with a fraction, like now, written beforehand).
CREATE OR REPLACE FUNCTION json_time(p_t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(to_json(p_t)::text, '+00:00"', 'Z"')
$$;

-- The buckets that intersect [p_from, p_to) (0008), with the same starts and ends: a sub-day bucket's end from
-- timestamp arithmetic (immutable), so the function inlines into a history's query with no call per bucket
-- (0008's end, ``timestamptz + interval``, is only stable, and kept this function from inlining its ends).
CREATE OR REPLACE FUNCTION rollup_buckets(p_from timestamptz, p_to timestamptz, p_width interval, p_tz text)
RETURNS TABLE (bucket timestamptz, bucket_end timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT d AT TIME ZONE 'UTC', (d + p_width) AT TIME ZONE 'UTC'
    FROM generate_series(rollup_floor(p_from, p_width, p_tz) AT TIME ZONE 'UTC',
                         (p_to AT TIME ZONE 'UTC') - interval '1 microsecond', p_width) AS d
    WHERE p_width < interval '1 day'
    UNION ALL
    SELECT d AT TIME ZONE p_tz, rollup_bucket_end(d AT TIME ZONE p_tz, p_width, p_tz)
    FROM generate_series(rollup_floor(p_from, p_width, p_tz) AT TIME ZONE p_tz,
                         (p_to AT TIME ZONE p_tz) - interval '1 microsecond', interval '1 day') AS d
    WHERE p_width >= interval '1 day'
$$;
