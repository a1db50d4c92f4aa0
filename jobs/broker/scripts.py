"""Every Lua script of the service. Each runs atomically in Redis: a job is moved,
claimed or removed exactly once however many processes race for it.

Key names and prefixes come in as KEYS / ARGV (jobs.broker.keys), never spelled
here, so the layout has one definition.
"""

from functools import lru_cache

from redis import Redis
from redis.client import Pipeline

# Write the RQ hash of each job (the template, the same for every delivery job of
# the process, plus its own origin, status and times) and put it where it belongs:
# on its queue (due now) or in the scheduled set (due later). A re-placed job
# (resume, retry of a failed one) loses its TTL and its finished / failed entry.
# KEYS: scheduled set, next-wake key. ARGV: now (RQ's time format), then one
# "id queue due workspace" per job (due: epoch seconds, or '-' for now; the
# workspace, last, may hold spaces): one argument per job, not four, as redis-py
# packs each argument in Python. The workspace is a field of our own in RQ's hash
# (RQ ignores it): the worker's fair share (CLAIM) reads it. The template and the
# key prefixes (job, queue, queues set, wake-up channel, failed and finished
# registries' heads, from jobs.broker.keys) are part of the script's text
# (place_script): sent once per process with SCRIPT LOAD, not with every call (the
# template's 40 arguments were a third of a schedule request's Redis time). Each
# queue gets one RPUSH, the scheduled set one ZADD, per 1,000 jobs (Lua's unpack is
# bounded). Wakes the scheduler once, when the earliest due time is before its
# plan.
PLACE = """
local template = {TEMPLATE}
local job_prefix, queue_prefix, queues = {JOB_PREFIX}, {QUEUE_PREFIX}, {QUEUES}
local channel, failed, finished = {CHANNEL}, {FAILED}, {FINISHED}
local now = ARGV[1]
local CHUNK = 1000
local pushed, scheduled = {}, {}
local earliest
local function flush(command, key, values)
  for i = 1, #values, CHUNK do
    redis.call(command, key, unpack(values, i, math.min(i + CHUNK - 1, #values)))
  end
end
for i = 2, #ARGV do
  local id, queue, score, workspace = string.match(ARGV[i], '^(%S+) (%S+) (%S+) (.*)$')
  local job_key = job_prefix .. id
  redis.call('HSET', job_key, unpack(template))
  redis.call('PERSIST', job_key)
  redis.call('ZREM', failed .. queue, id)
  redis.call('ZREM', finished .. queue, id)
  if score == '-' then
    redis.call('HSET', job_key, 'origin', queue, 'created_at', now,
               'workspace', workspace, 'status', 'queued', 'enqueued_at', now)
    pushed[queue] = pushed[queue] or {}
    table.insert(pushed[queue], id)
  else
    redis.call('HSET', job_key, 'origin', queue, 'created_at', now,
               'workspace', workspace, 'status', 'scheduled')
    table.insert(scheduled, score)
    table.insert(scheduled, id)
    if (not earliest) or tonumber(score) < earliest then earliest = tonumber(score) end
  end
end
for queue, ids in pairs(pushed) do
  flush('RPUSH', queue_prefix .. queue, ids)
  redis.call('SADD', queues, queue_prefix .. queue)
end
flush('ZADD', KEYS[1], scheduled)
if earliest then
  local wake = redis.call('GET', KEYS[2])
  if (not wake) or earliest < tonumber(wake) then
    redis.call('PUBLISH', channel, string.format('%.6f', earliest))
  end
end
return #ARGV - 1
"""


def place_script(template: tuple, names: dict[str, str]) -> str:
    """PLACE with `template` (field, value...: str or bytes) as a Lua table and
    the key names (JOB_PREFIX, QUEUE_PREFIX, QUEUES, CHANNEL, FAILED, FINISHED)
    as Lua strings."""
    fields = ", ".join(_lua_string(value) for value in template)
    script = PLACE.replace("{TEMPLATE}", "{" + fields + "}", 1)
    for name, value in names.items():
        script = script.replace("{" + name + "}", _lua_string(value), 1)
    return script


def _lua_string(value) -> str:
    """A value as redis-py would send it (bytes as is, else its str), as a Lua
    literal: every byte but ASCII letters and digits a decimal escape."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return (
        '"'
        + "".join(chr(b) if chr(b).isalnum() and b < 128 else f"\\{b:03d}" for b in raw)
        + '"'
    )


# Put already saved RQ jobs in the scheduled set: ARGV[1] the wake-up channel,
# then (id, due) pairs. One PUBLISH at most (for the earliest), as PLACE.
SCHEDULE = """
local earliest
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  if (not earliest) or tonumber(ARGV[i + 1]) < earliest then
    earliest = tonumber(ARGV[i + 1])
  end
end
if not earliest then return 0 end
local wake = redis.call('GET', KEYS[2])
if (not wake) or earliest < tonumber(wake) then
  redis.call('PUBLISH', ARGV[1], string.format('%.6f', earliest))
end
return (#ARGV - 1) / 2
"""

# Take jobs out of every place that would run them: the scheduled set (ours and
# RQ's own), their queue list or their workspace's parked list, and with ARGV[5] ==
# '1' delete their hash and their finished / failed entries too. KEYS[1]: scheduled
# set. ARGV: job prefix, queue prefix, RQ scheduled-registry head, failed head,
# delete flag, finished head, parked head, then (id, queue) pairs. A list is
# rewritten in one pass, and only when one of the ids is queued on it (LREM per id
# would scan a 50,000-job list once per id).
UNPLACE = """
local job_prefix, queue_prefix, rq_scheduled = ARGV[1], ARGV[2], ARGV[3]
local failed, delete, finished, parked = ARGV[4], ARGV[5] == '1', ARGV[6], ARGV[7]
local listed = {}
local function drop(key, id)
  listed[key] = listed[key] or {}
  listed[key][id] = true
end
for i = 8, #ARGV, 2 do
  local id, queue = ARGV[i], ARGV[i + 1]
  local job_key = job_prefix .. id
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', rq_scheduled .. queue, id)
  local state = redis.call('HMGET', job_key, 'status', 'workspace')
  if state[1] == 'queued' then
    drop(queue_prefix .. queue, id)
    if state[2] and state[2] ~= '' then drop(parked .. state[2], id) end
  end
  if delete then
    redis.call('DEL', job_key)
    redis.call('ZREM', failed .. queue, id)
    redis.call('ZREM', finished .. queue, id)
  end
end
local removed = 0
for key, ids in pairs(listed) do
  local keep = {}
  for _, id in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if ids[id] then removed = removed + 1 else keep[#keep + 1] = id end
  end
  redis.call('DEL', key)
  for i = 1, #keep, 5000 do
    redis.call('RPUSH', key, unpack(keep, i, math.min(i + 4999, #keep)))
  end
end
return removed
"""

# Push one scheduled job on its queue exactly as Queue.enqueue_job would: status,
# enqueued_at, RPUSH on the queue list, the queue in the queues set.
# ARGV[1..4]: enqueued_at, job prefix, queue prefix, queues set.
_MOVE_FUNCTION = """
local function move(id)
  local job_key = ARGV[2] .. id
  local origin = redis.call('HGET', job_key, 'origin')
  if not origin then return 0 end
  local queue_key = ARGV[3] .. origin
  redis.call('HSET', job_key, 'status', 'queued', 'enqueued_at', ARGV[1])
  redis.call('RPUSH', queue_key, id)
  redis.call('SADD', ARGV[4], queue_key)
  return 1
end
"""

# Move up to ARGV[6] jobs due by ARGV[5] (now) from each sorted set in KEYS (ours,
# then RQ's own scheduled registries: a stock worker's retries). ZREM and push in
# one script: each job moves exactly once whichever scheduler runs it.
MOVE_DUE = (
    _MOVE_FUNCTION
    + """
local moved = 0
for _, set in ipairs(KEYS) do
  local ids = redis.call('ZRANGEBYSCORE', set, '-inf', ARGV[5],
                        'LIMIT', 0, tonumber(ARGV[6]) - moved)
  for _, id in ipairs(ids) do
    redis.call('ZREM', set, id)
    move(id)
  end
  moved = moved + #ids
  if moved >= tonumber(ARGV[6]) then break end
end
return moved
"""
)

# Move job ARGV[5] to its queue now, if it is still in the scheduled set KEYS[1].
PROMOTE = (
    _MOVE_FUNCTION
    + """
if redis.call('ZREM', KEYS[1], ARGV[5]) == 0 then return 0 end
return move(ARGV[5])
"""
)

# Record when the scheduler will next look: the earliest due job, at the latest
# now + max sleep (ARGV[1], ARGV[2]). A string: Lua numbers become integers.
PLAN_WAKE = """
local wake = tonumber(ARGV[1]) + tonumber(ARGV[2])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) < wake then wake = tonumber(first[2]) end
local ttl = math.ceil(tonumber(ARGV[2]) * 1000) + 1000
redis.call('SET', KEYS[2], string.format('%.6f', wake), 'PX', ttl)
return string.format('%.6f', wake)
"""

# Record how claimed jobs ended, as RQ's worker would: out of the queue's started
# registry (the member is "id:worker"), then finished (hash kept RESULT_TTL),
# failed, or back in the scheduled set for a retry (score: its epoch seconds).
# KEYS: scheduled set, next-wake key. ARGV[1..10]: worker, ended_at, now, result
# TTL, failure TTL, job prefix, started head, finished head, failed head, wake-up
# channel; then (queue, "id end id end …") pairs, end 'c', 'f' or the retry's
# score: one argument per queue, not three per job (redis-py packs each argument in
# Python; packing was 9% of a worker's CPU). One PUBLISH at most, as SCHEDULE.
# Returns how many jobs.
FINISH = """
local worker, stamp, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local result_ttl, failure_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local job_prefix, started, finished, failed = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local earliest, count = nil, 0
for i = 11, #ARGV, 2 do
  local queue = ARGV[i]
  for id, ending in string.gmatch(ARGV[i + 1], '(%S+) (%S+)') do
    local job_key = job_prefix .. id
    count = count + 1
    redis.call('ZREM', started .. queue, id .. ':' .. worker)
    if ending == 'c' then
      redis.call('HSET', job_key, 'status', 'finished', 'ended_at', stamp)
      redis.call('EXPIRE', job_key, result_ttl)
      redis.call('ZADD', finished .. queue, now + result_ttl, id)
    elseif ending == 'f' then
      redis.call('HSET', job_key, 'status', 'failed', 'ended_at', stamp)
      redis.call('ZADD', failed .. queue, now + failure_ttl, id)
    else
      redis.call('HSET', job_key, 'status', 'scheduled')
      redis.call('ZADD', KEYS[1], ending, id)
      local due = tonumber(ending)
      if (not earliest) or due < earliest then earliest = due end
    end
  end
end
if earliest then
  local wake = redis.call('GET', KEYS[2])
  if (not wake) or earliest < tonumber(wake) then
    redis.call('PUBLISH', ARGV[10], string.format('%.6f', earliest))
  end
end
return count
"""

# Claim up to ARGV[1] jobs for worker ARGV[2]: status started (at ARGV[3]), in
# their queue's started registry (head ARGV[6]) until ARGV[4]; ids whose hash is
# gone (cancelled) are skipped. A workspace holds at most ARGV[7] of the worker's
# slots (0: no limit); ARGV[13..] are (workspace, slots it holds now) pairs. A job
# over its workspace's share moves from the queue to the end of the workspace's
# parked list (head ARGV[8]; ARGV[9] the set of parked workspaces), and parked
# jobs are claimed first, in order, when their workspace has room: jobs wait in
# Redis, not in a worker, and no workspace's jobs overtake each other. ARGV[10],
# if not '', is an id already popped (by BLPOP) from one of the queues (KEYS).
# At most 10 pops per slot: a backlog of one workspace is parked a bit at a time.
# Paused queues (names in the set ARGV[11]; ARGV[12] the queue prefix) are not
# popped, and a job of one that was popped (BLPOP) or parked goes back to the head
# of its queue: it waits there until the queue is resumed.
# Returns one JSON string, [queue, id, workspace, ...], or '' for none: one reply
# to parse, not three per job (redis-py reads each in Python).
CLAIM = """
local limit, job_prefix, started = tonumber(ARGV[1]), ARGV[5], ARGV[6]
local cap, parked, parked_set = tonumber(ARGV[7]), ARGV[8], ARGV[9]
local paused, queue_prefix = {}, ARGV[12]
for _, name in ipairs(redis.call('SMEMBERS', ARGV[11])) do paused[name] = true end
local held = {}
for i = 13, #ARGV, 2 do held[ARGV[i]] = tonumber(ARGV[i + 1]) end
local claimed, count, pops = {}, 0, 0
local function room(ws)
  return cap == 0 or ws == '' or (held[ws] or 0) < cap
end
local function claim(id)
  local job_key = job_prefix .. id
  local state = redis.call('HMGET', job_key, 'origin', 'workspace')
  if not state[1] then return end
  if paused[state[1]] then
    redis.call('LPUSH', queue_prefix .. state[1], id)
    return
  end
  local ws = state[2] or ''
  redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[3],
             'worker_name', ARGV[2])
  redis.call('ZADD', started .. state[1], ARGV[4], id .. ':' .. ARGV[2])
  held[ws] = (held[ws] or 0) + 1
  count = count + 1
  table.insert(claimed, state[1])
  table.insert(claimed, id)
  table.insert(claimed, ws)
end
local function take(id)
  local ws = redis.call('HGET', job_prefix .. id, 'workspace')
  if not ws then return end
  if room(ws) then return claim(id) end
  redis.call('RPUSH', parked .. ws, id)
  redis.call('SADD', parked_set, ws)
end
if cap > 0 then
  for _, ws in ipairs(redis.call('SMEMBERS', parked_set)) do
    while count < limit and room(ws) do
      local id = redis.call('LPOP', parked .. ws)
      if not id then redis.call('SREM', parked_set, ws); break end
      claim(id)
    end
  end
end
if ARGV[10] ~= '' then take(ARGV[10]) end
for _, queue_key in ipairs(KEYS) do
  local name = string.sub(queue_key, #queue_prefix + 1)
  while not paused[name] and count < limit and pops < limit * 10 do
    local id = redis.call('LPOP', queue_key)
    if not id then break end
    pops = pops + 1
    take(id)
  end
end
if count == 0 then return '' end
return cjson.encode(claimed)
"""

# Reserve send instants for one workspace (jobs.ratelimit explains the scheme).
# ARGV: key prefix, rate, key TTL after its second, now, then due times, all
# instants in whole epoch microseconds. Returns the reserved instants the same way.
# Integers (exact in Lua's doubles up to 2^53, the year 2255): instants are exactly
# `step` apart, with no float sums drifting and no margin at a second's end.
# Pointers are stored as seconds with six decimals, as before this was integers.
# `skip[s]` remembers, within this call, a later second to look at for a job
# that finds second s full, so a 50,000-job campaign is not O(n^2).
RESERVE_SLOTS = """
local SECOND = 1000000
local prefix, ttl = ARGV[1], tonumber(ARGV[3])
-- Rounded up: `rate` steps never fit in less than a second.
local now, step = tonumber(ARGV[4]), math.ceil(SECOND / tonumber(ARGV[2]))
local pointer, dirty, skip, out = {}, {}, {}, {}
local function stored(s)
  local text = redis.call('GET', prefix .. s)
  return text and math.floor(tonumber(text) * SECOND + 0.5) or 0
end
local function next_free(s)
  if pointer[s] == nil then
    local own = stored(s)
    if own == 0 then
      -- A fresh second carries on from the one before: even spacing across.
      own = math.max(s * SECOND, pointer[s - 1] or stored(s - 1))
    end
    pointer[s] = own
  end
  return pointer[s]
end
local function fits(s, at) return at < (s + 1) * SECOND end
for i = 5, #ARGV do
  local due = tonumber(ARGV[i])
  -- Capacity before now is gone: using it would release a burst at once.
  local start = math.max(due, now)
  local s = math.floor(start / SECOND)
  local at = math.max(start, next_free(s))
  if not fits(s, at) then
    local visited = {}
    s = s + 1
    while true do
      while skip[s] do table.insert(visited, s); s = skip[s] end
      at = next_free(s)
      if fits(s, at) then break end
      table.insert(visited, s)
      s = s + 1
    end
    for _, v in ipairs(visited) do skip[v] = s end
  end
  pointer[s] = at + step
  dirty[s] = true
  -- Not moved: the due time stands (a job due already goes at once).
  if at == start then at = due end
  table.insert(out, string.format('%d', at))
end
for s, _ in pairs(dirty) do
  local p = pointer[s]
  local text = string.format('%d.%06d', math.floor(p / SECOND), p % SECOND)
  redis.call('SET', prefix .. s, text, 'EXAT', s + ttl)
end
return out
"""


def run(client: Redis | Pipeline, source: str, keys: list, args: list):
    """Run a script: by its SHA on a connection (EVALSHA, loaded on first use), by
    its text inside a pipeline (redis-py would check SCRIPT EXISTS first, one more
    round trip per pipeline)."""
    if isinstance(client, Pipeline):
        return client.eval(source, len(keys), *keys, *args)
    return _registered(client, source)(keys=keys, args=args)


@lru_cache(maxsize=32)
def _registered(client: Redis, source: str):
    return client.register_script(source)
