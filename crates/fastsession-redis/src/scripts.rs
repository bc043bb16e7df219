//! The Lua scripts that make each write one atomic step on the server.
//!
//! Liveness is decided from the stored `created` / `last_active` / `expires_at` and the `now`
//! and expiry passed in, mirroring `Expiry::check` (with the anonymous idle timeout for a hash
//! without `user`, the remembered one for a hash with `user` and `persistent` "1"), never from
//! the server's clock: the caller's clock is the one the rest of the library uses.
//!
//! Two families:
//!
//! * The **session** scripts (`CREATE`, `UPDATE`, `TOUCH`, `REMOVE`) touch one key, the session's,
//!   so they run unchanged on Redis Cluster. There the anonymous index is kept by separate
//!   steps: `INDEX` on the index keys (one slot: they share a hash tag), then `EVICT` on each
//!   session it chose, which are in other slots.
//! * The **indexed** scripts (`UPDATE_INDEXED`, `REMOVE_INDEXED`), for one server: the
//!   session step, the index step and the evictions in one script, so one round trip and
//!   atomic; `MAKE_ROOM` is the index step alone, after a create. `KEYS` are the session, the index (a list) and the byte counts
//!   (a hash); `ARGV` starts with five index arguments (the session
//!   key name up to its 64 hex digits, the session's member, the two bounds of the budget,
//!   the request's data bytes), then the session script's own at offset `o`. The evicted
//!   sessions' keys are not declared: a standalone server allows that, and which sessions
//!   go is only known inside the script.
//!
//! The first write of every script that can grow memory is an `HSET` of the session (Redis
//! refuses it with `OOM` when `maxmemory` is reached and nothing can be evicted): once a
//! script has written, Redis lets its later writes through, so the check must come first.

use std::sync::LazyLock;

use redis::Script;

/// The liveness test shared by `update` and `touch`, on `KEYS[1]`, with the script's own
/// arguments from `ARGV[o + 1]`: now, idle, anonymous idle, absolute, skew, remembered idle
/// (seconds). Sets `meta` (created, last active, version, user, persistent, expires at),
/// `created`, `now`, `idle`, `anon_idle`, `rem_idle`, `abs`, `was_anon`, `was_persist` and
/// `exp` (the record's own deadline, `nil` if none); returns `{0}` (after deleting the key)
/// when the record is absent, malformed or expired, `{-1}` when the key holds something that
/// is not a hash.
const LIVE: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[o + 1])
local idle = tonumber(ARGV[o + 2])
local anon_idle = tonumber(ARGV[o + 3])
local abs = tonumber(ARGV[o + 4])
local skew = tonumber(ARGV[o + 5])
local rem_idle = tonumber(ARGV[o + 6])
local meta = redis.pcall('HMGET', key, 'created', 'last_active', 'version', 'user', 'persistent', 'expires_at')
if meta.err then
  redis.call('DEL', key)
  return {-1}
end
local created = tonumber(meta[1])
local last = tonumber(meta[2])
local was_anon = not meta[4]
local was_persist = meta[5] == '1'
local exp = tonumber(meta[6])
local limit = idle
if was_anon then limit = anon_idle elseif was_persist then limit = rem_idle end
if created == nil or last == nil or created > now + skew or last > now + skew
    or last < created or now >= created + abs or now >= last + limit
    or (exp and now >= exp) then
  redis.call('DEL', key)
  return {0}
end
";

/// The TTL of a live record after `LIVE`, given `anon` (whether it has no user now),
/// `persist` (whether it is remembered now) and `exp` (its own deadline now, or `nil`): its
/// deadline from now, at least a second.
const TTL: &str = "string.format('%d', math.max(1, math.min(math.min(now + (anon and anon_idle or (persist and rem_idle or idle)), created + abs, exp or (created + abs)) - now, 3153600000)))";

/// The anonymous index, on `KZ` (a list, the queue: one entry per anonymous session, its 64
/// hex digits followed by the second it was queued at, oldest first) and `KL` (hash: member →
/// the bytes it holds beyond its share, only for the sessions that do, and `#` → their sum),
/// which the including script declares. Each entry counts for its share of the budget
/// (`maxb / maxn`, rounded down) or its session's bytes if more: the index's bytes are its
/// length times the share plus `#`, so a session within its share costs one `RPUSH` when it
/// is created and nothing when it is saved.
///
/// Every step is O(1): no save moves an entry. An entry leaves the queue only from its head,
/// when the index is over the budget, and is judged then (the CLOCK algorithm's second
/// chance): a session active since it was queued goes back to the tail, queued anew; one that
/// ended, expired or has a user by now is dropped; any other is evicted. So the queue counts
/// an anonymous session from its creation until its turn comes after it ended or logged in:
/// an upper bound, as before for sessions that expired. Either key holding something else (not
/// written by this store) is dropped and the index starts afresh: its sessions still expire by
/// their TTL.
const INDEX_FNS: &str = r"
local function ix(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if not (string.find(r.err, 'WRONGTYPE', 1, true) or string.find(r.err, 'not an integer', 1, true)) then
      error(r)
    end
    redis.call('DEL', KZ, KL)
    r = redis.call(...)
  end
  return r
end

-- Takes what `member` holds beyond its share out of the count; its entry stays queued.
-- Returns the new sum, or nil if it held nothing beyond.
local function unbytes(member)
  local extra = ix('HGET', KL, member)
  if extra then
    ix('HDEL', KL, member)
    return ix('HINCRBY', KL, '#', -(tonumber(extra) or 0))
  end
end

-- Counts `len` bytes for `member` (what it holds beyond its share). Returns whether that grew.
local function bytes(member, len, maxn, maxb)
  local extra = math.max(len - math.floor(maxb / maxn), 0)
  local old = tonumber(ix('HGET', KL, member)) or 0
  if extra ~= old then
    if extra > 0 then ix('HSET', KL, member, extra) else ix('HDEL', KL, member) end
    ix('HINCRBY', KL, '#', extra - old)
  end
  return extra > old
end

-- If the index is over `maxn` entries or `maxb` bytes, takes out its head until it has room
-- for a few more (a 64th of `maxn`, at most 64: none for a budget under 64 sessions) and asks
-- `judge(member, queued_at, second_chance)`: 2 keeps it (queued anew at `now`), 1 evicts
-- it (deleting the key it names second, if any), 0 drops the entry. `member` itself (the
-- session being saved) is always kept; at most eight others get a second chance per call, so
-- a queue of active sessions still makes room. `unsent` entries of the calling process, not
-- queued yet, count as queued. The head is taken as many entries at a time as the count is
-- over, and their keys deleted together: a `redis.call` costs more than the work it does.
-- Returns the entries judged 1 without a key to delete (a Cluster's, which the caller judges
-- itself), and how many keys were deleted.
local function room(member, now, maxn, maxb, judge, unsent)
  local share = math.floor(maxb / maxn)
  local count = ix('LLEN', KZ) + (unsent or 0)
  local extras = tonumber(ix('HGET', KL, '#')) or 0
  if count <= maxn and count * share + extras <= maxb then return {}, 0 end
  -- Past the budget, room for `slack` more, so that the creates after this one take the
  -- common path: the script's own cost is paid once for several evictions.
  local slack = math.min(64, math.floor(maxn / 64))
  maxn, maxb = maxn - slack, maxb - slack * share
  local out, deleted = {}, 0
  local chances = 0
  local turns = count + 16
  while (count > maxn or count * share + extras > maxb) and turns > 0 do
    local n = math.min(math.max(count - maxn, 1), turns)
    turns = turns - n
    local taken = redis.call('LRANGE', KZ, 0, n - 1)
    if #taken == 0 then break end
    redis.call('LTRIM', KZ, #taken, -1)
    local back, dels = {}, {}
    for _, e in ipairs(taken) do
      local v, at = string.sub(e, 1, 64), tonumber(string.sub(e, 65))
      local verdict, k = 0, nil
      if v == member then
        verdict = 2
      elseif at and #v == 64 and not string.find(v, '}', 1, true) then
        verdict, k = judge(v, at, chances < 8)
      end
      if verdict == 2 then
        back[#back + 1] = v .. now
        if v ~= member then chances = chances + 1 end
      else
        count = count - 1
        -- With no bytes counted beyond the shares, no entry has any to take out.
        if extras > 0 then extras = unbytes(v) or extras end
        if verdict == 1 then
          if k then dels[#dels + 1] = k else out[#out + 1] = e end
        end
      end
    end
    if #back > 0 then redis.call('RPUSH', KZ, unpack(back)) end
    if #dels > 0 then deleted = deleted + redis.call('DEL', unpack(dels)) end
  end
  return out, deleted
end
";

/// The judgement of a queued session `k` at its turn (see `room`), which deletes nothing
/// itself: 0 for one with a user (it logged in since it was queued), which is never evicted;
/// with `second`, 2 for one active since `at`; else 1, to be deleted (a key that is gone, it
/// ended or expired, deletes nothing; a value that is not a hash is not a session).
const JUDGE_FN: &str = r"
local function judge_key(k, at, second)
  local meta = redis.pcall('HMGET', k, 'last_active', 'user')
  if meta.err then return 1 end
  if meta[2] then return 0 end
  local last = tonumber(meta[1])
  if second and last and last > at then return 2 end
  return 1
end
";

/// The head of an indexed script: offset, index keys, the index functions, and a judge of
/// the sessions under the session prefix `ARGV[1]`, all on this one server.
fn indexed(body: &str) -> String {
    format!("local o = 5\nlocal KZ, KL = KEYS[2], KEYS[3]\n{INDEX_FNS}{JUDGE_FN}{JUDGE}{body}")
}

/// `judge` for a session named by its member, under the session prefix `ARGV[1]`: the
/// verdict and the key.
const JUDGE: &str = "local function judge(v, at, second) local k = ARGV[1] .. v .. '}' return judge_key(k, at, second), k end\n";

/// `KEYS[1]` session; `ARGV`: ttl, then field, value pairs. Creates only if absent: 1 if
/// created, 0 if something was there. (For servers that refuse `RESTORE`.)
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then return 0 end
for i = 2, #ARGV, 400 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
redis.call('EXPIRE', key, ARGV[1])
return 1
",
    )
});

/// The index step of an anonymous create on one server, after its `RESTORE` and the `RPUSH`
/// of its entry (with the entries of other creates of the process), when the session is
/// larger than its share or the index is over the budget: counts its bytes and makes room.
/// `KEYS` session, index, byte counts; `ARGV` the five index arguments, the second it was
/// queued at, `q` if the `RPUSH` met an index key holding something this store did not write
/// (the index starts afresh, and the entries that follow are queued now), the number of the
/// process's entries not sent yet, and with `q` the entries. Returns the number of sessions
/// evicted.
pub(crate) static MAKE_ROOM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&indexed(
        r"local member, maxn, maxb, len = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if ARGV[7] == 'q' then
  ix('HGET', KL, '#')
  ix('RPUSH', KZ, unpack(ARGV, 9))
end
bytes(member, len, maxn, maxb)
local _, evicted = room(member, ARGV[6], maxn, maxb, judge, tonumber(ARGV[8]))
return evicted
",
    ))
});

/// The update after `LIVE`, from `ARGV[o + 7]`: the user change (`''` none, `s` set, `d`
/// deleted), the "remember me" change (`''` none, `1` on, `0` off), the deadline change
/// (`''` none, `-` taken back, else the new one in seconds), what was cleared (`''`, `v`
/// values, `f` flashes, `vf` both), the number D of fields to delete, the D fields, the
/// number I of fields to increment, I field, delta pairs, then field, value pairs to set
/// (`last_active` among them; `persistent` and `expires_at` too when they change). Sets
/// `anon`, `persist` and `exp` as they are after the update.
///
/// The increments come last, after the clear and the deletions: each `HINCRBY` adds a
/// request's delta to the stored integer (a missing field counts as 0). One that Redis
/// refuses (the field holds something that is not an integer, or the sum would overflow)
/// leaves the field as it is, as `Record::apply` does: it runs under `pcall`, since an error
/// would stop the script with its earlier writes kept.
///
/// It does the least Lua work it can (each `redis.call` and each table costs more than the
/// hash writes themselves): the client sends the fields ready to pass through, the version
/// is appended to `ARGV` rather than copied into a new table, and without deletions one
/// `HSET` writes everything.
const UPDATE_BODY: &str = r"
local uc = ARGV[o + 7]
local anon = uc == 'd' or (uc == '' and was_anon)
local pc = ARGV[o + 8]
local persist = pc == '1' or (pc == '' and was_persist)
local ec = ARGV[o + 9]
if ec == '-' then exp = nil elseif ec ~= '' then exp = tonumber(ec) end
local cleared = ARGV[o + 10]
local last_del = o + 11 + tonumber(ARGV[o + 11])
local last_inc = last_del + 1 + 2 * tonumber(ARGV[last_del + 1])
if cleared ~= '' or last_del > o + 11 then
  -- Deleting first would let the later HSET past an OOM refusal: this one is checked.
  redis.call('HSET', key, 'last_active', ARGV[o + 1])
  if cleared ~= '' then
    local values, flashes = string.find(cleared, 'v', 1, true), string.find(cleared, 'f', 1, true)
    local dels = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      local prefix = string.sub(f, 1, 2)
      if (values and prefix == 'v:') or (flashes and prefix == 'f:') then dels[#dels + 1] = f end
    end
    for i = 1, #dels, 400 do
      redis.call('HDEL', key, unpack(dels, i, math.min(i + 399, #dels)))
    end
  end
  for i = o + 12, last_del, 400 do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 399, last_del)))
  end
end
ARGV[#ARGV + 1] = 'version'
ARGV[#ARGV + 1] = tostring((tonumber(meta[3]) or 0) + 1)
for i = last_inc + 1, #ARGV, 400 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
for i = last_del + 2, last_inc, 2 do
  redis.pcall('HINCRBY', key, ARGV[i], ARGV[i + 1])
end
";

/// `KEYS[1]` session; `ARGV`: now, idle, anonymous idle, absolute, skew, remembered idle
/// (seconds), then as `UPDATE_BODY`. Returns `{1, anonymous now, anonymous before}` (0 or 1 each) if applied,
/// `{0}` if the record was not live (and is now deleted: nothing is ever recreated), `{-1}`
/// if the key held something else (deleted too). The merged hash is not sent back: nobody
/// needs it.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local o = 0
{LIVE}{UPDATE_BODY}
redis.call('EXPIRE', key, {TTL})
return {{1, anon and 1 or 0, was_anon and 1 or 0}}
"
    ))
});

/// `UPDATE` on one server, keeping the index: `KEYS` session, index, byte counts; `ARGV` the
/// five index arguments, then `UPDATE`'s. A session that became anonymous (a logout without
/// a new id) is queued; one that is anonymous has its bytes counted anew; either makes room
/// over the budget if it joined or grew. One that gained a user has its bytes taken out (its
/// entry is dropped when its turn comes). Returns `{1, evicted}`, `{0}` or `{-1}`.
pub(crate) static UPDATE_INDEXED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&indexed(&format!(
        r"{LIVE}{UPDATE_BODY}
redis.call('EXPIRE', key, {TTL})
local evicted = 0
local member, maxn, maxb = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if anon then
  if not was_anon then ix('RPUSH', KZ, member .. ARGV[o + 1]) end
  if bytes(member, tonumber(ARGV[5]), maxn, maxb) or not was_anon then
    local _, deleted = room(member, ARGV[o + 1], maxn, maxb, judge)
    evicted = deleted
  end
elseif was_anon then
  unbytes(member)
end
return {{1, evicted}}
"
    )))
});

/// The touch after `LIVE`: moves `last_active` and the TTL, never touching data fields.
const TOUCH_BODY: &str = r"
local anon = was_anon
local persist = was_persist
redis.call('HSET', key, 'last_active', ARGV[o + 1])
";

/// `KEYS[1]` session; `ARGV`: now, idle, anonymous idle, absolute, skew, remembered idle.
/// Returns `{1}` for a live record, `{0}` (deleted) for a dead one, `{-1}` for a foreign value
/// (deleted). The anonymous index needs no step: the activity it judges by is `last_active`.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local o = 0
{LIVE}{TOUCH_BODY}
redis.call('EXPIRE', key, {TTL})
return {{1}}
"
    ))
});

/// The check after a plain merge whose `version` answer does not show the session was there
/// before it (a hash written before versions started at `VERSION_BASE`, or an empty one the
/// merge wrote into): `KEYS[1]` session, `ARGV[1]` the base. Returns 1 if `created` is there,
/// after moving a `version` below the base past it, so that the session's later merges need
/// no check; 0 if not; -1 if the key holds something other than a hash. One step, so that a
/// logout between the check and the move cannot leave an empty hash that looks live.
pub(crate) static CHECK_MERGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local there = redis.pcall('HEXISTS', KEYS[1], 'created')
if type(there) == 'table' then return -1 end
if there == 0 then return 0 end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version and version < tonumber(ARGV[1]) then
  redis.pcall('HINCRBY', KEYS[1], 'version', ARGV[1])
end
return 1
",
    )
});

/// What `REMOVE` returns for a key holding something other than a hash: one element, where
/// a hash's fields come in pairs.
pub(crate) const FOREIGN: &str = "!";

/// The remove: the hash, deleted, as `fields`.
const REMOVE_BODY: &str = r"
local fields = redis.pcall('HGETALL', KEYS[1])
if fields.err then
  redis.call('DEL', KEYS[1])
  fields = {'!'}
elseif #fields > 0 then
  redis.call('DEL', KEYS[1])
end
";

/// `KEYS[1]` session. Returns the hash and deletes it, atomically: of two concurrent removes,
/// one gets the record and the other an empty reply. A key holding something else is
/// deleted and reported as [`FOREIGN`].
pub(crate) static REMOVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{REMOVE_BODY}return fields\n")));

/// `REMOVE` on one server, also taking the session's bytes out of the index (its entry is
/// dropped when its turn comes): `KEYS` session, index, byte counts; `ARGV` the five index
/// arguments.
pub(crate) static REMOVE_INDEXED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&indexed(&format!(
        "{REMOVE_BODY}unbytes(ARGV[2])\nreturn fields\n"
    )))
});

/// The index step on a Cluster: `KEYS` index, byte counts; `ARGV`: what (`add`: queue and
/// count; `grow`: count; `back`: queue again; `del`: take the bytes out), member, the second
/// it is queued at, data bytes, the two bounds. Returns the entries the step took out to make
/// room (the sessions are in other slots, so the index cannot judge them): the caller judges
/// each with [`EVICT`] and queues those it keeps `back`, which makes room again.
pub(crate) static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local KZ, KL = KEYS[1], KEYS[2]
{INDEX_FNS}
local what, member, now = ARGV[1], ARGV[2], ARGV[3]
local maxn, maxb = tonumber(ARGV[5]), tonumber(ARGV[6])
if what == 'del' then
  unbytes(member)
  return {{}}
end
if what ~= 'grow' then ix('RPUSH', KZ, member .. now) end
if what ~= 'back' then
  local grew = bytes(member, tonumber(ARGV[4]), maxn, maxb)
  if what == 'grow' and not grew then return {{}} end
end
return (room(member, now, maxn, maxb, function() return 1 end))
"
    ))
});

/// `KEYS[1]` a session a Cluster's index took out to make room; `ARGV`: the second it was
/// queued at, `1` if it may have a second chance. Returns 1 if it was deleted, 0 if it is gone
/// or has a user (left alone), 2 if it was active since it was queued (left alone: the caller
/// queues it again).
pub(crate) static EVICT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{JUDGE_FN}local v = judge_key(KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1')\nif v == 1 then return redis.call('DEL', KEYS[1]) end\nreturn v\n"
    ))
});

/// `KEYS[1]` user index set; `ARGV`: member, ttl. Adds the member and pushes the set's TTL
/// out, so an index nobody reads still disappears once every session in it has expired. A
/// key of another type there (not this store's) is replaced, so that it cannot make every
/// login of that user fail.
pub(crate) static LINK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local added = redis.pcall('SADD', KEYS[1], ARGV[1])
if type(added) == 'table' and added.err then
  if not string.find(added.err, 'WRONGTYPE', 1, true) then return redis.error_reply(added.err) end
  redis.call('DEL', KEYS[1])
  redis.call('SADD', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});
