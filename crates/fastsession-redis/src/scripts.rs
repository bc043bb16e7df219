//! The Lua scripts that make each write one atomic step on the server.
//!
//! Each touches exactly one key (`KEYS[1]`), so they run unchanged on Redis Cluster. Liveness
//! is decided from the stored `created` / `last_active` and the `now` and expiry passed in,
//! mirroring `Expiry::check`, never from the server's clock: the caller's clock is the one the
//! rest of the library uses.

use std::sync::LazyLock;

use redis::Script;

/// The liveness test shared by `update` and `touch`: sets `created`, `now`, `idle`, `abs` and
/// returns false (after deleting the key) when the record is absent, malformed or expired.
const LIVE: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local abs = tonumber(ARGV[3])
local skew = tonumber(ARGV[4])
local meta = redis.call('HMGET', key, 'created', 'last_active')
local created = tonumber(meta[1])
local last = tonumber(meta[2])
if created == nil or last == nil or created > now + skew or last > now + skew
    or last < created or now >= created + abs or now >= last + idle then
  redis.call('DEL', key)
  return false
end
local function ttl()
  local deadline = math.min(now + idle, created + abs)
  local secs = math.max(1, math.min(deadline - now, 3153600000))
  return string.format('%d', secs)
end
";

/// `KEYS[1]` session; `ARGV`: ttl, then field, value pairs. Creates only if absent: 1 if
/// created, 0 if something was there.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', key, ARGV[1])
return 1
",
    )
});

/// `KEYS[1]` session; `ARGV`: now, idle, absolute, skew (seconds), values cleared (0/1),
/// flashes cleared (0/1), persistent (`''` unchanged, `0`, `1`), user (`''` unchanged, `-`
/// removed, `=` set to the next argument), the user, then triples of op (`s` set, `d`
/// delete), field, value. Returns the whole resulting hash, or nil if the record was not live
/// (and is now deleted): nothing is ever recreated.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
local function clear(prefix)
  local fields = redis.call('HKEYS', key)
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == prefix then redis.call('HDEL', key, f) end
  end
end
if ARGV[5] == '1' then clear('v:') end
if ARGV[6] == '1' then clear('f:') end
for i = 10, #ARGV, 3 do
  if ARGV[i] == 's' then
    redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', key, ARGV[i + 1])
  end
end
if ARGV[7] ~= '' then redis.call('HSET', key, 'persistent', ARGV[7]) end
if ARGV[8] == '-' then
  redis.call('HDEL', key, 'user')
elseif ARGV[8] == '=' then
  redis.call('HSET', key, 'user', ARGV[9])
end
redis.call('HINCRBY', key, 'version', 1)
redis.call('HSET', key, 'last_active', ARGV[1])
redis.call('EXPIRE', key, ttl())
return redis.call('HGETALL', key)
"
    ))
});

/// `KEYS[1]` session; `ARGV`: now, idle, absolute, skew. Sets `last_active` and the TTL of a
/// live record and returns 1; deletes a dead one and returns 0. Never touches data fields.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
redis.call('HSET', key, 'last_active', ARGV[1])
redis.call('EXPIRE', key, ttl())
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
