//! The Lua scripts that make each write one atomic step on the server.
//!
//! Each touches exactly one key (`KEYS[1]`), so they run unchanged on Redis Cluster. Liveness
//! is decided from the stored `created` / `last_active` and the `now` and expiry passed in,
//! mirroring `Expiry::check`, never from the server's clock: the caller's clock is the one the
//! rest of the library uses.

use std::sync::LazyLock;

use redis::Script;

/// The liveness test shared by `update` and `touch`: sets `meta` (created, last active,
/// version), `created`, `now`, `idle`, `abs` and returns false (after deleting the key) when
/// the record is absent, malformed or expired. Then `TTL` is the expression of the TTL to set.
const LIVE: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local abs = tonumber(ARGV[3])
local skew = tonumber(ARGV[4])
local meta = redis.call('HMGET', key, 'created', 'last_active', 'version')
local created = tonumber(meta[1])
local last = tonumber(meta[2])
if created == nil or last == nil or created > now + skew or last > now + skew
    or last < created or now >= created + abs or now >= last + idle then
  redis.call('DEL', key)
  return false
end
";

/// The TTL of a live record after `LIVE`: its deadline from now, at least a second.
const TTL: &str = "string.format('%d', math.max(1, math.min(math.min(now + idle, created + abs) - now, 3153600000)))";

/// `KEYS[1]` session; `ARGV`: ttl, then field, value pairs. Creates only if absent: 1 if
/// created, 0 if something was there.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then return 0 end
for i = 2, #ARGV, 400 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
redis.call('EXPIRE', key, ARGV[1])
return 1
",
    )
});

/// `KEYS[1]` session; `ARGV`: now, idle, absolute, skew (seconds), what was cleared (`''`,
/// `v` values, `f` flashes, `vf` both), the number D of fields to delete, the D fields, then
/// field, value pairs to set (`last_active` among them). Returns 1, or nil if the record was
/// not live (and is now deleted): nothing is ever recreated. The merged hash is not sent back:
/// nobody needs it.
///
/// It does the least Lua work it can (each `redis.call` and each table costs more than the
/// hash writes themselves): the client sends the fields ready to pass through, and the
/// version is appended to `ARGV` rather than copied into a new table.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
local cleared = ARGV[5]
if cleared ~= '' then
  local values, flashes = string.find(cleared, 'v', 1, true), string.find(cleared, 'f', 1, true)
  local dels = {{}}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local prefix = string.sub(f, 1, 2)
    if (values and prefix == 'v:') or (flashes and prefix == 'f:') then dels[#dels + 1] = f end
  end
  for i = 1, #dels, 400 do
    redis.call('HDEL', key, unpack(dels, i, math.min(i + 399, #dels)))
  end
end
local last_del = 6 + tonumber(ARGV[6])
for i = 7, last_del, 400 do
  redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 399, last_del)))
end
ARGV[#ARGV + 1] = 'version'
ARGV[#ARGV + 1] = tostring((tonumber(meta[3]) or 0) + 1)
for i = last_del + 1, #ARGV, 400 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
redis.call('EXPIRE', key, {TTL})
return 1
"
    ))
});

/// `KEYS[1]` session; `ARGV`: now, idle, absolute, skew. Sets `last_active` and the TTL of a
/// live record and returns 1; deletes a dead one and returns 0. Never touches data fields.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
redis.call('HSET', key, 'last_active', ARGV[1])
redis.call('EXPIRE', key, {TTL})
return 1
"
    ))
});

/// `KEYS[1]` session. Returns the hash and deletes it, atomically: of two concurrent takes,
/// one gets the record and the other an empty reply.
pub(crate) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then redis.call('DEL', KEYS[1]) end
return fields
",
    )
});

/// `KEYS[1]` user index set; `ARGV`: member, ttl. Adds the member and pushes the set's TTL
/// out, so an index nobody reads still disappears once every session in it has expired.
pub(crate) static LINK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});
