//! The SQL of every operation, built once per backend around the checked, quoted table name.
//!
//! Identifiers are the only text spliced in (they cannot be parameters, and
//! `PostgresConfig::qualified_table` allows only `[a-z0-9_]`); every value is a parameter.

/// The columns a record is rebuilt from, in the order `backend::rows::decode` reads them.
const RECORD_COLUMNS: &str =
    "created, last_active, persistent, user_id, vals::text, flashes::text, expires_at";

/// How many counter rows the anonymous budget is spread over: concurrent writers of anonymous
/// rows mostly update different rows instead of queueing on one.
pub(crate) const BUDGET_SLOTS: u32 = 16;

/// The most anonymous rows one statement evicts. In a full budget a create evicts one or a
/// few; the bound keeps a statement short when far more are over (the budget was lowered, or
/// one large session came in among many small ones): the next creates evict the rest.
pub(crate) const EVICT_MAX: u32 = 256;

/// "Live at `$2`" under the expiry whose bounds are `$3..$7`: the rule of `Expiry::check`
/// (not from the future beyond the skew, consistent, within the absolute lifetime, before the
/// row's own deadline `expires_at` if it has one, and within the idle timeout of the row's
/// class: `$5` for a row with a user, `$6` for an anonymous one, `$7` for a remembered one,
/// with a user and persistent), rearranged so no sum can overflow. The class is the stored
/// row's, as `Expiry::check` of the stored record would judge it.
const LIVE: &str = "created <= $3::bigint AND last_active <= $3::bigint AND last_active >= created \
     AND created > $4::bigint \
     AND (expires_at IS NULL OR expires_at > $2::bigint) \
     AND last_active > CASE WHEN user_id IS NULL THEN $6::bigint \
         WHEN persistent THEN $7::bigint ELSE $5::bigint END";

/// The increments of a merge: for each key of the object `$26` (key → the sum of a request's
/// increments), the stored integer plus it, as an object to put over `vals`; a key the row
/// does not hold (or that `$12` cleared) counts as 0. A stored value that is not an integer
/// within `bigint` (another request stored something else there), or a sum beyond it, is
/// left out, so the stored value stays, as in `Record::apply`. The `CASE` branches run in
/// order, so no cast sees a value it cannot take. The keys in `$26` are in no other
/// parameter of the merge.
const SUMS: &str = "(SELECT coalesce(jsonb_object_agg(d.key, n.v), '{}'::jsonb) \
     FROM jsonb_each($26::text::jsonb) d \
     CROSS JOIN LATERAL (SELECT CASE WHEN $12::boolean THEN NULL ELSE vals -> d.key END AS cur) c \
     CROSS JOIN LATERAL (SELECT CASE \
         WHEN c.cur IS NULL THEN d.value \
         WHEN jsonb_typeof(c.cur) <> 'number' THEN NULL \
         WHEN scale(c.cur::numeric) <> 0 THEN NULL \
         WHEN c.cur::numeric + d.value::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN NULL \
         ELSE to_jsonb(c.cur::numeric + d.value::numeric) END AS v) n \
     WHERE n.v IS NOT NULL)";

/// The new expiry after activity at `$2` of a row whose user, "remember me" and own deadline
/// afterwards are `user`, `persistent` and `expires_at`: the earliest of its class's idle
/// deadline (`$8` with a user, `$9` anonymous, `$10` remembered), `created + $11` and its own
/// deadline (in `numeric`, so that it cannot overflow; `LEAST` skips a deadline that is
/// `NULL`; the result is at most the idle deadline).
fn deadline(user: &str, persistent: &str, expires_at: &str) -> String {
    format!(
        "LEAST(CASE WHEN {user} IS NULL THEN $9::bigint \
         WHEN {persistent} THEN $10::bigint ELSE $8::bigint END::numeric, \
         created::numeric + $11::bigint::numeric, ({expires_at})::numeric)::bigint"
    )
}

pub(crate) struct Statements {
    pub(crate) migrate: String,
    /// With the near cache: the query that tells the listener the notify triggers are there.
    pub(crate) notify_check: String,
    pub(crate) read: String,
    pub(crate) create: String,
    pub(crate) create_anonymous: String,
    pub(crate) update: String,
    pub(crate) update_missed: String,
    pub(crate) update_anonymous: String,
    pub(crate) evict: String,
    pub(crate) touch: String,
    pub(crate) remove: String,
    pub(crate) reap: String,
    pub(crate) link: String,
    pub(crate) unlink: String,
    pub(crate) user_keys: String,
}

impl Statements {
    /// `table` is `"schema"."name"`, already checked and quoted; `channel`, with the near
    /// cache, the channel its notify triggers (installed by `migrate` then) send on.
    pub(crate) fn new(table: &str, schema: &str, name: &str, channel: Option<&str>) -> Self {
        let t = table;
        // The per-slot counts of the anonymous rows and their bytes, kept by triggers.
        let budget = format!("\"{schema}\".\"{name}_budget\"");
        // Where the walk for the next eviction starts (see `raised`).
        let floor = format!("\"{schema}\".\"{name}_floor\"");
        let insert = format!(
            "INSERT INTO {t} \
             (key, created, last_active, expires, persistent, user_id, user_hash, version, vals, flashes, data_len, expires_at) \
             VALUES ($1::bytea, $2::bigint, $3::bigint, $4::bigint, $5::boolean, $6::text, $7::bytea, 1, \
             $8::text::jsonb, $9::text::jsonb, $10::bigint, $11::bigint) \
             ON CONFLICT (key) DO NOTHING RETURNING 1"
        );
        // The merge of a request's changes, if the row is live. Under READ COMMITTED a
        // concurrent writer's row is re-checked (LIVE) and the SET expressions see its
        // committed values, so merges of different keys never lose each other, increments of
        // one key add to the committed value, and a row deleted meanwhile is not brought back.
        let user_after = "CASE WHEN $20::boolean THEN $21::text ELSE user_id END";
        let persistent_after = "CASE WHEN $18::boolean THEN $19::boolean ELSE persistent END";
        let expires_at_after = "CASE WHEN $24::boolean THEN $25::bigint ELSE expires_at END";
        let merge = |guard: &str| {
            format!(
                "UPDATE {t} SET \
               vals = (CASE WHEN $12::boolean THEN '{{}}'::jsonb ELSE vals END - $13::text[]) || $14::text::jsonb \
                 || CASE WHEN $26::text = '{{}}' THEN '{{}}'::jsonb ELSE {sums} END, \
               flashes = (CASE WHEN $15::boolean THEN '{{}}'::jsonb ELSE flashes END - $16::text[]) || $17::text::jsonb, \
               persistent = {persistent_after}, \
               user_id = {user_after}, \
               user_hash = CASE WHEN $20::boolean THEN $22::bytea ELSE user_hash END, \
               data_len = $23::bigint, \
               expires_at = {expires_at_after}, \
               version = version + 1, \
               last_active = $2::bigint, \
               expires = {deadline} \
             WHERE key = $1::bytea AND {LIVE} AND {guard} \
             RETURNING version",
                deadline = deadline(user_after, persistent_after, expires_at_after),
                sums = SUMS,
            )
        };
        // `$27` set: the request leaves the session anonymous, as it found it. The merge then
        // needs no budget if the row has a user (another request logged it in meanwhile) or
        // does not grow; otherwise it is held back, and the caller runs `update_anonymous`.
        let kept = "(NOT $27::boolean OR user_id IS NOT NULL OR data_len >= $23::bigint)";
        // In the same statement as a budgeted merge or a refresh: the deletion of a row not
        // live.
        let ended = format!(
            "DELETE FROM {t} WHERE key = $1::bytea AND NOT ({LIVE}) AND NOT EXISTS (SELECT 1 FROM live)"
        );
        Statements {
            migrate: migrate(t, schema, name, &budget, &floor, channel),
            notify_check: format!(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('{t}') \
                 AND tgname IN ({NOTIFY_TRIGGERS}) AND tgenabled IN ('O', 'A')"
            ),
            // The version last: the near cache keeps it, for a write's proof.
            read: format!("SELECT {RECORD_COLUMNS}, version FROM {t} WHERE key = $1::bytea"),
            create: format!("WITH ins AS ({insert}) SELECT count(*), 0::bigint FROM ins"),
            // The anonymous row and, if it enters the eviction order behind the floor, the
            // floor lowered to it. The second answer says whether the budget may now be
            // exceeded (counted from the counters as of the statement's start, plus the new
            // row): the caller then runs `evict`.
            create_anonymous: format!(
                "WITH ins AS ({insert}), {lowered} \
                 SELECT (SELECT count(*) FROM ins), EXISTS (SELECT 1 FROM ins) AND \
                   (SELECT coalesce(sum(sessions), 0) + 1 > $12::bigint \
                      OR coalesce(sum(bytes), 0) + $10::bigint > $13::bigint FROM {budget})",
                lowered = lowered(&floor, "$3::bigint", "ins"),
            ),
            // The merge alone, a row if it applied: nothing else runs while it holds the row,
            // which concurrent saves of one session wait for. When it merged nothing, the
            // caller runs `update_missed`.
            update: merge(kept),
            // After an `update` that merged nothing (`$1`, the liveness `$2..$7`, `$8` as
            // `$27` there): a row not live is deleted (the session ended), and the third answer
            // says the merge was held back (`$8` set and the row live: the caller runs
            // `update_anonymous`, which decides). Not the guard itself: under a concurrent
            // write the guard is re-checked on the newest row, which a snapshot does not see.
            update_missed: format!(
                "WITH ended AS (DELETE FROM {t} WHERE key = $1::bytea AND NOT ({LIVE})) \
                 SELECT 0::bigint, false, \
                   $8::boolean AND EXISTS (SELECT 1 FROM {t} WHERE key = $1::bytea AND {LIVE})"
            ),
            // As `update`, for a session the request leaves anonymous and larger, or makes
            // anonymous: the second answer says whether the budget may now be exceeded, the
            // row's own count and bytes replaced by its new ones.
            update_anonymous: format!(
                "WITH own AS (\
                   SELECT count(*) AS sessions, coalesce(sum(data_len), 0)::bigint AS bytes \
                   FROM {t} WHERE key = $1::bytea AND user_id IS NULL), \
                 live AS ({merge}), ended AS ({ended}), {lowered} \
                 SELECT (SELECT count(*) FROM live), EXISTS (SELECT 1 FROM live) AND \
                   (SELECT coalesce(sum(b.sessions), 0) - own.sessions + 1 > $27::bigint \
                      OR coalesce(sum(b.bytes), 0) - own.bytes + $23::bigint > $28::bigint \
                    FROM {budget} b CROSS JOIN own GROUP BY own.sessions, own.bytes), \
                   false, (SELECT max(version) FROM live)",
                merge = merge("TRUE"),
                lowered = lowered(&floor, "$2::bigint", "live"),
            ),
            // After a write that may have exceeded the budget: the least recently active
            // anonymous rows other than `$1` deleted until it holds, from the eviction floor
            // (`$4` false) or from the start of the order (`$4` true: the caller's second try
            // when the first found too few, see `Backend::evict`).
            evict: format!(
                "WITH RECURSIVE over AS (\
                   SELECT coalesce(sum(sessions), 0)::bigint - $2::bigint AS sessions, \
                          coalesce(sum(bytes), 0)::bigint - $3::bigint AS bytes FROM {budget}), \
                 {victims}, \
                 gone AS ({evict} RETURNING 1), \
                 {raised} \
                 SELECT (SELECT count(*) FROM gone), \
                   (SELECT count(*) < {EVICT_MAX} AND (o.sessions > count(*) \
                      OR o.bytes > coalesce(max(v.freed), 0)) FROM over o LEFT JOIN victims v ON TRUE \
                    GROUP BY o.sessions, o.bytes)",
                victims = victims(t, &floor, "a.key <> $1::bytea"),
                evict = evict(t),
                raised = raised(t, &floor),
            ),
            touch: format!(
                "WITH live AS (UPDATE {t} SET last_active = $2::bigint, expires = {deadline} \
                 WHERE key = $1::bytea AND {LIVE} RETURNING 1), ended AS ({ended}) \
                 SELECT 1 FROM live",
                deadline = deadline("user_id", "persistent", "expires_at"),
            ),
            remove: format!("DELETE FROM {t} WHERE key = $1::bytea RETURNING {RECORD_COLUMNS}"),
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

/// The CTE `victims`: the least recently active anonymous rows (other than those `spare`
/// excludes), walked one index step at a time in `(last_active, key)` order from the budget's
/// eviction floor, as many as it takes to bring the counts of CTE `over` within the budget
/// and at most `EVICT_MAX`. Each step is one probe of the partial index `<table>_anon`, so
/// the walk reads only the rows it evicts. Only rows without a user are ever read.
///
/// The floor is where earlier evictions stopped (see `raised`): without it, each walk would
/// start at the index's first entry and step over the entries of every row evicted since the
/// last vacuum, which under a flood are all the rows evicted in that time.
///
/// The first step's conditions on `over` and the floor are uncorrelated subqueries so that
/// PostgreSQL evaluates them once, before the scan (a one-time filter and an index bound): as
/// a join condition the first would be checked against every anonymous row, a scan of the
/// whole index whenever the budget has room.
fn victims(t: &str, floor: &str, spare: &str) -> String {
    format!(
        "victims (tid, key, last_active, freed, n) AS (\
           (SELECT a.ctid, a.key, a.last_active, a.data_len, 1::bigint FROM {t} a \
            WHERE (SELECT o.sessions > 0 OR o.bytes > 0 FROM over o) \
              AND a.user_id IS NULL AND {spare} \
              AND (a.last_active, a.key) > (SELECT \
                CASE WHEN $4::boolean THEN -9223372036854775808 ELSE f.active END, \
                CASE WHEN $4::boolean THEN '\\x'::bytea ELSE f.key END FROM {floor} f) \
            ORDER BY a.last_active, a.key LIMIT 1) \
           UNION ALL \
           (SELECT nx.ctid, nx.key, nx.last_active, v.freed + nx.data_len, v.n + 1 \
            FROM victims v CROSS JOIN over CROSS JOIN LATERAL (\
              SELECT a.ctid, a.key, a.last_active, a.data_len FROM {t} a \
              WHERE a.user_id IS NULL AND {spare} AND (a.last_active, a.key) > (v.last_active, v.key) \
              ORDER BY a.last_active, a.key LIMIT 1) nx \
            WHERE (v.n < over.sessions OR v.freed < over.bytes) AND v.n < {EVICT_MAX}))"
    )
}

/// The deletion of the `victims`, re-checked on the row as it is when deleted: a row that has
/// gained a user, or been active since the walk read it, is spared. The caller appends its
/// own condition and `RETURNING`.
///
/// The victims are fetched by the row versions the walk read (`ctid = ANY` of an array, a TID
/// scan), one each. A victim another statement holds locked is skipped rather than waited
/// for: concurrent creates in a full budget all walk to the same oldest rows, and waiting
/// would queue every one of them behind the first, which deletes it anyway (the budget may
/// then be over by at most the writers in flight, until the next writes evict the rest).
/// "No user" is written `num_nulls(user_id) = 1` rather than `user_id IS NULL` so that the
/// planner cannot answer it with the partial index of all anonymous rows: not knowing how few
/// victims the walk yields, it would read that whole index (seen in plans, with thousands of
/// rows) instead of the few rows named.
fn evict(t: &str) -> String {
    format!(
        "DELETE FROM {t} d WHERE d.ctid = ANY (ARRAY(SELECT l.ctid FROM {t} l \
           WHERE l.ctid = ANY (ARRAY(SELECT v.tid FROM victims v)) FOR UPDATE SKIP LOCKED)) \
         AND num_nulls(d.user_id) = 1 \
         AND d.last_active <= (SELECT v.last_active FROM victims v WHERE v.key = d.key)"
    )
}

/// The CTEs `target` and `raised`: move the eviction floor up to the last victim the walk
/// chose. Every anonymous row before it was evicted, or spared because it was active since
/// or gained a user (and so moved on in the order or left it), except the row `$1` the walk
/// leaves alone: if that one is behind the last victim, the floor stops at its second. Only
/// if no other writer holds the floor: concurrent evictions in a flood take turns moving it
/// instead of queueing on it.
fn raised(t: &str, floor: &str) -> String {
    format!(
        "target (active, key) AS (SELECT \
             CASE WHEN b.behind THEN s.last_active ELSE m.last_active END, \
             CASE WHEN b.behind THEN '\\x'::bytea ELSE m.key END \
           FROM (SELECT v.last_active, v.key FROM victims v ORDER BY v.n DESC LIMIT 1) m \
           LEFT JOIN (SELECT last_active FROM {t} WHERE key = $1::bytea AND user_id IS NULL) s \
             ON TRUE \
           CROSS JOIN LATERAL (SELECT (s.last_active, '\\x'::bytea) < (m.last_active, m.key) \
             AS behind) b), \
         raised AS (UPDATE {floor} f SET active = m.active, key = m.key FROM target m \
           WHERE f.ctid = ANY (ARRAY(SELECT l.ctid FROM {floor} l \
             WHERE (l.active, l.key) < (SELECT active, key FROM target) FOR UPDATE SKIP LOCKED)) \
           AND (m.active, m.key) > (f.active, f.key))"
    )
}

/// The CTE `lowered`: once the statement's write (CTE `done`) is made, lowers the eviction
/// floor to a row `$1` that enters the order at `active` behind it (written with an older
/// last activity than the rows evicted, as by a server whose clock is behind, or in the same
/// second with a smaller key), so that the walk finds it. Never waited for either: if an
/// eviction holds the floor meanwhile and moves it past the row, `evict`'s second walk,
/// from the start of the order, finds the row once the walk from the floor runs short.
fn lowered(floor: &str, active: &str, done: &str) -> String {
    format!(
        "lowered AS (UPDATE {floor} SET active = {active}, key = '\\x'::bytea \
           WHERE ctid = ANY (ARRAY(SELECT ctid FROM {floor} \
             WHERE EXISTS (SELECT 1 FROM {done}) AND (active, key) >= ({active}, $1::bytea) \
             FOR UPDATE SKIP LOCKED)))"
    )
}

/// The near cache's triggers, by name, as `notify_check` counts them.
const NOTIFY_TRIGGERS: &str =
    "'fastsession_notify_update', 'fastsession_notify_delete', 'fastsession_notify_truncate'";

/// The near cache's notifications (see `backend::listen`): after every committed change of a
/// row, `<key in hex> <origin> <version>` on `channel`, the version only if the update bumped
/// it (a merge); `*` after a `TRUNCATE`. An update that changes nothing (the user index set
/// to what it was) sends nothing. `pg_notify` sends at commit, and not at all on a rollback.
fn notify(t: &str, schema: &str, name: &str, channel: &str) -> String {
    let origin = "coalesce(current_setting('fastsession.origin', true), '')";
    let triggers = [
        (
            "update",
            "AFTER UPDATE",
            "FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)",
        ),
        ("delete", "AFTER DELETE", "FOR EACH ROW"),
        ("truncate", "AFTER TRUNCATE", "FOR EACH STATEMENT"),
    ]
    .map(|(op, when, each)| {
        format!(
            "    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '{t}'::regclass
                   AND tgname = 'fastsession_notify_{op}') THEN
        CREATE TRIGGER fastsession_notify_{op} {when} ON {t}
            {each} EXECUTE FUNCTION \"{schema}\".\"{name}_notify\"();
    END IF;
"
        )
    })
    .concat();
    format!(
        "-- The near cache: every change of a row is notified to the app servers that cache it.
CREATE OR REPLACE FUNCTION \"{schema}\".\"{name}_notify\"() RETURNS trigger
LANGUAGE plpgsql AS $notify$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{channel}', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('{channel}', encode(OLD.key, 'hex') || ' ' || {origin} || ' ');
    ELSE
        IF OLD.key IS DISTINCT FROM NEW.key THEN
            PERFORM pg_notify('{channel}', encode(OLD.key, 'hex') || ' ' || {origin} || ' ');
        END IF;
        PERFORM pg_notify('{channel}', encode(NEW.key, 'hex') || ' ' || {origin} || ' '
            || CASE WHEN NEW.version IS DISTINCT FROM OLD.version
                    THEN coalesce(NEW.version::text, '') ELSE '' END);
    END IF;
    RETURN NULL;
END
$notify$;
DO $notify_install$
BEGIN
{triggers}END
$notify_install$;
"
    )
}

/// Creates what is missing, in one transaction under an advisory lock; upgrades a table made
/// before the anonymous budget (no `data_len`, no counters) or before sessions had their own
/// deadline (no `expires_at`) in place. With `channel` (the near cache), also the notify
/// triggers; without, it leaves them as they are (other app servers may rely on them).
fn migrate(
    t: &str,
    schema: &str,
    name: &str,
    budget: &str,
    floor: &str,
    channel: Option<&str>,
) -> String {
    let slots = BUDGET_SLOTS;
    let notify = channel.map_or_else(String::new, |c| notify(t, schema, name, c));
    format!(
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
    flashes jsonb NOT NULL DEFAULT '{{}}',
    data_len bigint NOT NULL DEFAULT 0,
    expires_at bigint
);
-- A table made before sessions had their own deadline gets the column (NULL: none). Checked
-- first, because ALTER TABLE would take its exclusive lock even when there is nothing to do.
DO $expires_at$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{t}'::regclass
                   AND attname = 'expires_at' AND NOT attisdropped) THEN
        ALTER TABLE {t} ADD COLUMN expires_at bigint;
    END IF;
END
$expires_at$;
CREATE INDEX IF NOT EXISTS \"{name}_expires\" ON {t} (expires);
CREATE INDEX IF NOT EXISTS \"{name}_user\" ON {t} (user_hash) WHERE user_hash IS NOT NULL;
-- The anonymous budget: each row's data bytes, the eviction order of the rows without a user,
-- and their counts, kept per slot by a trigger.
-- The eviction floor: one row, the (last_active, key) the next walk for victims starts after.
CREATE TABLE IF NOT EXISTS {floor} (active bigint NOT NULL, key bytea NOT NULL);
INSERT INTO {floor} (active, key) SELECT -9223372036854775808, '\\x'::bytea
    WHERE NOT EXISTS (SELECT 1 FROM {floor});
CREATE OR REPLACE FUNCTION \"{schema}\".\"{name}_count\"() RETURNS trigger
LANGUAGE plpgsql AS $count$
DECLARE
    n bigint := 0;
    b bigint := 0;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE {budget} SET sessions = 0, bytes = 0;
        UPDATE {floor} SET active = -9223372036854775808, key = '\\x'::bytea;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.user_id IS NULL THEN
        n := n - 1;
        b := b - OLD.data_len;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.user_id IS NULL THEN
        n := n + 1;
        b := b + NEW.data_len;
    END IF;
    -- Every count a statement changes goes to the one counter row of its connection (only
    -- the sum matters): a statement never holds one counter row while waiting for another,
    -- so concurrent writers cannot deadlock on them.
    UPDATE {budget} SET sessions = sessions + n, bytes = bytes + b
        WHERE slot = pg_backend_pid() % {slots};
    RETURN NULL;
END
$count$;
DO $install$
BEGIN
    IF to_regclass('\"{schema}\".\"{name}_budget\"') IS NULL THEN
        -- Writers wait until the counts below are committed with the triggers that keep them.
        LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE;
        ALTER TABLE {t} ADD COLUMN IF NOT EXISTS data_len bigint NOT NULL DEFAULT 0;
        CREATE INDEX IF NOT EXISTS \"{name}_anon\" ON {t} (last_active, key) INCLUDE (data_len)
            WHERE user_id IS NULL;
        CREATE TABLE {budget} (
            slot integer PRIMARY KEY,
            sessions bigint NOT NULL,
            bytes bigint NOT NULL
        );
        -- Rows written before the budget: their stored JSON's length, a close upper bound.
        UPDATE {t} SET data_len = greatest(octet_length(vals::text) + octet_length(flashes::text) - 4, 0)
            WHERE user_id IS NULL AND data_len = 0;
        INSERT INTO {budget} (slot, sessions, bytes)
            SELECT s, coalesce(c.sessions, 0), coalesce(c.bytes, 0)
            FROM generate_series(0, {slots} - 1) s
            LEFT JOIN (SELECT get_byte(key, 0) % {slots} AS slot, count(*) AS sessions,
                              sum(data_len) AS bytes
                       FROM {t} WHERE user_id IS NULL GROUP BY 1) c ON c.slot = s;
        CREATE TRIGGER fastsession_count_insert AFTER INSERT ON {t}
            FOR EACH ROW WHEN (NEW.user_id IS NULL)
            EXECUTE FUNCTION \"{schema}\".\"{name}_count\"();
        CREATE TRIGGER fastsession_count_delete AFTER DELETE ON {t}
            FOR EACH ROW WHEN (OLD.user_id IS NULL)
            EXECUTE FUNCTION \"{schema}\".\"{name}_count\"();
        -- Not for an update of a row with a user that keeps it: logged-in saves cost nothing.
        CREATE TRIGGER fastsession_count_update AFTER UPDATE ON {t}
            FOR EACH ROW WHEN ((OLD.user_id IS NULL) <> (NEW.user_id IS NULL)
                OR (NEW.user_id IS NULL AND OLD.data_len <> NEW.data_len))
            EXECUTE FUNCTION \"{schema}\".\"{name}_count\"();
        CREATE TRIGGER fastsession_count_truncate AFTER TRUNCATE ON {t}
            FOR EACH STATEMENT EXECUTE FUNCTION \"{schema}\".\"{name}_count\"();
    END IF;
END
$install$;
{notify}COMMIT;"
    )
}
