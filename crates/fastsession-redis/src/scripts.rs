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
local meta = redis.call('HMGET', key, 'created', 'last_active', 'version')
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
for i = 2, #ARGV, 400 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
redis.call('EXPIRE', key, ARGV[1])
return 1
",
    )
});

/// `KEYS[1]` session; `ARGV`: now, idle, absolute, skew (seconds), values cleared (0/1),
/// flashes cleared (0/1), persistent (`''` unchanged, `0`, `1`), user (`''` unchanged, `-`
/// removed, `=` set to the next argument), the user, then triples of op (`s` set, `d`
/// delete), field, value. Returns 1, or nil if the record was not live (and is now deleted):
/// nothing is ever recreated. The merged hash is not sent back: nobody needs it.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
-- Field writes are batched into few HSET / HDEL calls: each call costs more than its work.
local sets, dels = {{}}, {{}}
local function flush()
  for i = 1, #sets, 400 do
    redis.call('HSET', key, unpack(sets, i, math.min(i + 399, #sets)))
  end
  for i = 1, #dels, 400 do
    redis.call('HDEL', key, unpack(dels, i, math.min(i + 399, #dels)))
  end
  sets, dels = {{}}, {{}}
end
local function clear(prefix)
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == prefix then dels[#dels + 1] = f end
  end
end
if ARGV[5] == '1' then clear('v:') end
if ARGV[6] == '1' then clear('f:') end
-- Deletions first: a clear followed by sets of the same names keeps the new values.
flush()
for i = 10, #ARGV, 3 do
  if ARGV[i] == 's' then
    sets[#sets + 1] = ARGV[i + 1]
    sets[#sets + 1] = ARGV[i + 2]
  else
    dels[#dels + 1] = ARGV[i + 1]
  end
end
if ARGV[7] ~= '' then
  sets[#sets + 1] = 'persistent'
  sets[#sets + 1] = ARGV[7]
end
if ARGV[8] == '-' then
  dels[#dels + 1] = 'user'
elseif ARGV[8] == '=' then
  sets[#sets + 1] = 'user'
  sets[#sets + 1] = ARGV[9]
end
local version = (tonumber(meta[3]) or 0) + 1
sets[#sets + 1] = 'version'
sets[#sets + 1] = string.format('%d', version)
sets[#sets + 1] = 'last_active'
sets[#sets + 1] = ARGV[1]
flush()
redis.call('EXPIRE', key, ttl())
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
