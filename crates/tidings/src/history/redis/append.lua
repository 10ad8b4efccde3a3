-- Appends a batch of events to the log, then applies retention; one script,
-- so two nodes appending the same id at once store it once, and retention
-- is exact.
--
-- KEYS: the stream, the id -> position hash, the meta hash.
-- ARGV: append time (ms), this node's bounds: most events, most bytes, most
-- age in ms (each 'none' when unbounded), most entries to remove, then the
-- id and record of each event in order.
-- The bounds applied are the log's, kept in the meta hash as
-- retain_events, retain_bytes and retain_age_ms: the first run on a log
-- stores the node's own there; later runs use what is stored, whichever
-- node runs them.
-- Answers: retained events, retained bytes, entries removed, the newest
-- position ever given, the replicated mark (0 when never set), the stored
-- bounds (-1 when unbounded), then the position of each event, negated for
-- a duplicate.
local log, ids, meta = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[5])

if redis.call('HEXISTS', meta, 'retain_events') == 0 then
  redis.call('HSET', meta, 'retain_events', ARGV[2], 'retain_bytes', ARGV[3], 'retain_age_ms', ARGV[4])
end
local stored = redis.call('HMGET', meta, 'retain_events', 'retain_bytes', 'retain_age_ms')
-- A value that is not a number (`none`, or a missing field) is unbounded.
local max_events = tonumber(stored[1])
local max_bytes = tonumber(stored[2])
local max_age = tonumber(stored[3])
local cutoff = max_age and (now - max_age)

local answer = {0, 0, 0, 0, 0, max_events or -1, max_bytes or -1, max_age or -1}
local added = 0
for i = 6, #ARGV, 2 do
  local id, record = ARGV[i], ARGV[i + 1]
  -- Also finds a duplicate earlier in this batch: its HSET is done.
  local known = redis.call('HGET', ids, id)
  if known then
    answer[#answer + 1] = -tonumber(known)
  else
    -- The counter, not the stream, remembers the newest position: it
    -- survives retention emptying the stream.
    local position = redis.call('HINCRBY', meta, 'last', 1)
    redis.call('XADD', log, '0-' .. position, 'r', record, 't', ARGV[1], 'i', id)
    redis.call('HSET', ids, id, position)
    added = added + #record
    answer[#answer + 1] = position
  end
end

local count = redis.call('XLEN', log)
local bytes = redis.call('HINCRBY', meta, 'bytes', added)

local function fields(entry)
  local flat, out = entry[2], {}
  for k = 1, #flat, 2 do
    out[flat[k]] = flat[k + 1]
  end
  return out
end

local function expired(entry)
  return (max_events and count > max_events)
    or (max_bytes and bytes > max_bytes)
    or (cutoff and tonumber(entry.t) < cutoff)
end

-- Whether anything is past a bound: the count and bytes are known, and
-- only the oldest entry can be too old. Reading the front on every append
-- would cost more than the append itself.
local function needs_trim()
  if (max_events and count > max_events) or (max_bytes and bytes > max_bytes) then
    return true
  end
  if not cutoff then
    return false
  end
  local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  return oldest ~= nil and tonumber(fields(oldest).t or '0') < cutoff
end

-- Oldest first, until the front is within every bound; the entries go in
-- one XTRIM at the end. Reads start small: one append past a bound
-- usually removes one entry.
local removed, newest_removed = 0, nil
local start = '-'
local chunk = 8
while removed < budget and needs_trim() do
  local entries = redis.call('XRANGE', log, start, '+', 'COUNT', math.min(budget - removed, chunk))
  chunk = math.min(chunk * 2, 256)
  if #entries == 0 then
    break
  end
  local within = false
  for _, raw in ipairs(entries) do
    local entry = fields(raw)
    if not (entry.r and entry.t and entry.i and tonumber(entry.t)) then
      return redis.error_reply('stream entry ' .. raw[1] .. ' of ' .. log .. ' is not a tidings record')
    end
    if not expired(entry) then
      within = true
      break
    end
    redis.call('HDEL', ids, entry.i)
    count = count - 1
    bytes = bytes - #entry.r
    removed = removed + 1
    newest_removed = raw[1]
  end
  if within then
    break
  end
  start = '(' .. newest_removed
end

if newest_removed then
  local position = tonumber(string.sub(newest_removed, 3))
  redis.call('XTRIM', log, 'MINID', '0-' .. (position + 1))
  redis.call('HSET', meta, 'bytes', bytes)
end

answer[1], answer[2], answer[3] = count, bytes, removed
answer[4] = tonumber(redis.call('HGET', meta, 'last') or '0')
answer[5] = tonumber(redis.call('HGET', meta, 'replicated') or '0')
return answer
