-- src/shindo/shindo.sql — the shindo type: JMA seismic intensity (震度階級).
-- C implementation: src/shindo/shindo.c.

CREATE TYPE status_checker.shindo;

CREATE FUNCTION status_checker.shindo_in(cstring) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_out(status_checker.shindo) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_recv(internal) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_send(status_checker.shindo) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';

CREATE TYPE status_checker.shindo (
    INPUT = status_checker.shindo_in,
    OUTPUT = status_checker.shindo_out,
    RECEIVE = status_checker.shindo_recv,
    SEND = status_checker.shindo_send,
    INTERNALLENGTH = 2,
    PASSEDBYVALUE,
    ALIGNMENT = int2,
    STORAGE = plain
);
COMMENT ON TYPE status_checker.shindo IS
'JMA seismic intensity class (震度階級): 0 < 1 < 2 < 3 < 4 < 5- < 5+ < 6- < 6+ < 7. '
'Input also accepts 5弱/5強/6弱/6強, full-width digits, a 震度 prefix, "5 lower"/"5 upper" and an '
'instrumental intensity such as 5.3; output is canonical (5-, 5+, ...).';

-- comparison
CREATE FUNCTION status_checker.shindo_eq(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_ne(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_lt(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_le(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_gt(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_ge(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_hash(status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_hash_extended(status_checker.shindo, bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';

COMMENT ON FUNCTION status_checker.shindo_eq(status_checker.shindo, status_checker.shindo) IS 'Support for shindo =';
COMMENT ON FUNCTION status_checker.shindo_ne(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <>';
COMMENT ON FUNCTION status_checker.shindo_lt(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <';
COMMENT ON FUNCTION status_checker.shindo_le(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <=';
COMMENT ON FUNCTION status_checker.shindo_gt(status_checker.shindo, status_checker.shindo) IS 'Support for shindo >';
COMMENT ON FUNCTION status_checker.shindo_ge(status_checker.shindo, status_checker.shindo) IS 'Support for shindo >=';
COMMENT ON FUNCTION status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo) IS 'btree support: -1, 0 or 1';
COMMENT ON FUNCTION status_checker.shindo_hash(status_checker.shindo) IS 'hash support';
COMMENT ON FUNCTION status_checker.shindo_hash_extended(status_checker.shindo, bigint) IS 'hash support (extended, seeded)';
COMMENT ON FUNCTION status_checker.shindo_in(cstring) IS 'Input function of shindo';
COMMENT ON FUNCTION status_checker.shindo_out(status_checker.shindo) IS 'Output function of shindo';
COMMENT ON FUNCTION status_checker.shindo_recv(internal) IS 'Binary input function of shindo';
COMMENT ON FUNCTION status_checker.shindo_send(status_checker.shindo) IS 'Binary output function of shindo';

CREATE OPERATOR status_checker.= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_eq,
    COMMUTATOR = OPERATOR(status_checker.=), NEGATOR = OPERATOR(status_checker.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR status_checker.<> (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_ne,
    COMMUTATOR = OPERATOR(status_checker.<>), NEGATOR = OPERATOR(status_checker.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR status_checker.< (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_lt,
    COMMUTATOR = OPERATOR(status_checker.>), NEGATOR = OPERATOR(status_checker.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR status_checker.<= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_le,
    COMMUTATOR = OPERATOR(status_checker.>=), NEGATOR = OPERATOR(status_checker.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR status_checker.> (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_gt,
    COMMUTATOR = OPERATOR(status_checker.<), NEGATOR = OPERATOR(status_checker.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR status_checker.>= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_ge,
    COMMUTATOR = OPERATOR(status_checker.<=), NEGATOR = OPERATOR(status_checker.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS status_checker.shindo_ops
    DEFAULT FOR TYPE status_checker.shindo USING btree AS
        OPERATOR 1 status_checker.<,
        OPERATOR 2 status_checker.<=,
        OPERATOR 3 status_checker.=,
        OPERATOR 4 status_checker.>=,
        OPERATOR 5 status_checker.>,
        FUNCTION 1 status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo);

CREATE OPERATOR CLASS status_checker.shindo_hash_ops
    DEFAULT FOR TYPE status_checker.shindo USING hash AS
        OPERATOR 1 status_checker.=,
        FUNCTION 1 status_checker.shindo_hash(status_checker.shindo),
        FUNCTION 2 status_checker.shindo_hash_extended(status_checker.shindo, bigint);

-- min / max
CREATE FUNCTION status_checker.shindo_larger(status_checker.shindo, status_checker.shindo) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_larger(status_checker.shindo, status_checker.shindo) IS 'The larger of two intensities';
COMMENT ON FUNCTION status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo) IS 'The smaller of two intensities';

CREATE AGGREGATE status_checker.max(status_checker.shindo) (
    SFUNC = status_checker.shindo_larger, STYPE = status_checker.shindo,
    COMBINEFUNC = status_checker.shindo_larger,
    SORTOP = OPERATOR(status_checker.>), PARALLEL = SAFE);
CREATE AGGREGATE status_checker.min(status_checker.shindo) (
    SFUNC = status_checker.shindo_smaller, STYPE = status_checker.shindo,
    COMBINEFUNC = status_checker.shindo_smaller,
    SORTOP = OPERATOR(status_checker.<), PARALLEL = SAFE);
COMMENT ON AGGREGATE status_checker.max(status_checker.shindo) IS 'Strongest intensity';
COMMENT ON AGGREGATE status_checker.min(status_checker.shindo) IS 'Weakest intensity';

-- helpers
CREATE FUNCTION status_checker.shindo_label(s status_checker.shindo, lang text DEFAULT 'ja') RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_label(status_checker.shindo, text) IS
'Label as people know it: 震度5弱 (lang ja, default) or Shindo 5 Lower (lang en)';
GRANT EXECUTE ON FUNCTION status_checker.shindo_label(status_checker.shindo, text) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.shindo_from_p2pquake(scale integer) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_from_p2pquake(integer) IS
'Shindo from a P2PQuake scale code (10,20,30,40,45,50,55,60,70; 46 = "5弱 or more, not received" → 5-; -1 → NULL)';

CREATE FUNCTION status_checker.shindo_from_instrumental(i numeric) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_from_instrumental(numeric) IS
'Shindo class of a JMA instrumental intensity (計測震度) by JMA''s definition: the value is rounded at the third decimal and truncated at the second (4.49 and 4.494 → 4, 4.495 → 5-); then 4.5 → 5-, 5.0 → 5+, 5.5 → 6-, 6.0 → 6+, 6.5 → 7';

CREATE FUNCTION status_checker.shindo_ordinal(s status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_ordinal(status_checker.shindo) IS
'Position of the class on the scale, 0 (震度0) to 9 (震度7)';

CREATE CAST (numeric AS status_checker.shindo)
    WITH FUNCTION status_checker.shindo_from_instrumental(numeric);
COMMENT ON CAST (numeric AS status_checker.shindo) IS
'Explicit: instrumental intensity to its shindo class';
