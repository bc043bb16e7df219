//! The SQL of every operation, built once per backend around the checked, quoted table name.
//!
//! Identifiers are the only text spliced in (they cannot be parameters, and
//! `PostgresConfig::qualified_table` allows only `[a-z0-9_]`); every value is a parameter.

/// The columns a record is rebuilt from, in the order `backend::decode` reads them.
const RECORD_COLUMNS: &str = "created, last_active, persistent, user_id, vals::text, flashes::text";

/// "Live at `$2`" under the expiry whose bounds are `$3..$5`: the rule of `Expiry::check`
/// (not from the future beyond the skew, consistent, within the absolute lifetime and the
/// idle timeout), rearranged so no sum can overflow.
const LIVE: &str = "created <= $3::bigint AND last_active <= $3::bigint AND last_active >= created \
     AND created > $4::bigint AND last_active > $5::bigint";

/// The new expiry after activity at `$2`: the earlier of the idle deadline `$6` and
/// `created + $7` (in `numeric`, so that it cannot overflow; the result is at most `$6`).
const DEADLINE: &str = "LEAST($6::bigint::numeric, created::numeric + $7::bigint::numeric)::bigint";

pub(crate) struct Statements {
    pub(crate) migrate: String,
    pub(crate) read: String,
    pub(crate) create: String,
    pub(crate) update: String,
    pub(crate) touch: String,
    pub(crate) take: String,
    pub(crate) reap: String,
    pub(crate) link: String,
    pub(crate) unlink: String,
    pub(crate) user_keys: String,
}

impl Statements {
    /// `table` is `"schema"."name"`, already checked and quoted.
    pub(crate) fn new(table: &str, schema: &str, name: &str) -> Self {
        let t = table;
        Statements {
            migrate: format!(
                "BEGIN;
SELECT pg_advisory_xact_lock(hashtext('fastsession-migrate:' || '{schema}.{name}'));
CREATE SCHEMA IF NOT EXISTS \"{schema}\";
CREATE TABLE IF NOT EXISTS {t} (
    key bytea PRIMARY KEY CHECK (octet_length(key) = 32),
    created bigint NOT NULL,
    last_active bigint NOT NULL,
    expires bigint NOT NULL,
    persistent boolean NOT NULL DEFAULT false,
    user_id text,
    user_hash bytea,
    version bigint NOT NULL DEFAULT 1,
    vals jsonb NOT NULL DEFAULT '{{}}',
    flashes jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS \"{name}_expires\" ON {t} (expires);
CREATE INDEX IF NOT EXISTS \"{name}_user\" ON {t} (user_hash) WHERE user_hash IS NOT NULL;
COMMIT;"
            ),
            read: format!("SELECT {RECORD_COLUMNS} FROM {t} WHERE key = $1::bytea"),
            create: format!(
                "INSERT INTO {t} \
                 (key, created, last_active, expires, persistent, user_id, user_hash, version, vals, flashes) \
                 VALUES ($1::bytea, $2::bigint, $3::bigint, $4::bigint, $5::boolean, $6::text, $7::bytea, 1, \
                 $8::text::jsonb, $9::text::jsonb) \
                 ON CONFLICT (key) DO NOTHING RETURNING 1"
            ),
            // One statement: the merge if live, else the deletion of the expired row. Under
            // READ COMMITTED a concurrent writer's row is re-checked (LIVE) and the SET
            // expressions see its committed values, so merges of different keys never lose
            // each other, and a row deleted meanwhile is not brought back.
            update: format!(
                "WITH live AS (UPDATE {t} SET \
                   vals = (CASE WHEN $8::boolean THEN '{{}}'::jsonb ELSE vals END - $9::text[]) || $10::text::jsonb, \
                   flashes = (CASE WHEN $11::boolean THEN '{{}}'::jsonb ELSE flashes END - $12::text[]) || $13::text::jsonb, \
                   persistent = CASE WHEN $14::boolean THEN $15::boolean ELSE persistent END, \
                   user_id = CASE WHEN $16::boolean THEN $17::text ELSE user_id END, \
                   user_hash = CASE WHEN $16::boolean THEN $18::bytea ELSE user_hash END, \
                   version = version + 1, \
                   last_active = $2::bigint, \
                   expires = {DEADLINE} \
                 WHERE key = $1::bytea AND {LIVE} \
                 RETURNING 1), \
                 ended AS (DELETE FROM {t} WHERE key = $1::bytea AND NOT ({LIVE}) \
                   AND NOT EXISTS (SELECT 1 FROM live)) \
                 SELECT 1 FROM live"
            ),
            touch: format!(
                "WITH live AS (UPDATE {t} SET last_active = $2::bigint, expires = {DEADLINE} \
                 WHERE key = $1::bytea AND {LIVE} RETURNING 1), \
                 ended AS (DELETE FROM {t} WHERE key = $1::bytea AND NOT ({LIVE}) \
                   AND NOT EXISTS (SELECT 1 FROM live)) \
                 SELECT 1 FROM live"
            ),
            take: format!("DELETE FROM {t} WHERE key = $1::bytea RETURNING {RECORD_COLUMNS}"),
            // SKIP LOCKED: rows a request is writing are left for the next pass, and two
            // reapers share the work instead of queueing on each other.
            reap: format!(
                "WITH gone AS (DELETE FROM {t} WHERE key IN \
                   (SELECT key FROM {t} WHERE expires <= $1::bigint ORDER BY expires \
                    LIMIT $2::bigint FOR UPDATE SKIP LOCKED) \
                 AND expires <= $1::bigint RETURNING 1) \
                 SELECT count(*) FROM gone"
            ),
            link: format!("UPDATE {t} SET user_hash = $2::bytea WHERE key = $1::bytea"),
            unlink: format!(
                "UPDATE {t} SET user_hash = NULL WHERE key = $1::bytea AND user_hash = $2::bytea"
            ),
            user_keys: format!("SELECT key FROM {t} WHERE user_hash = $1::bytea"),
        }
    }
}
