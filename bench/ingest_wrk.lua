-- The wrk script of bench/ingest.py: POSTs built from a template, every event unique.
--
--   wrk ... -s bench/ingest_wrk.lua URL -- TEMPLATE PREFIX EVENTS ARRAY CONTENT_TYPE
--
-- TEMPLATE is a file holding one event (or one webhook payload) in which __ID__ and __TIME__
-- stand for its id and its instant: each event gets the id PREFIX-<thread>-<n> (n counts per
-- thread, so ids and subjects never repeat) and the current second, UTC. A body is EVENTS of
-- them, as a JSON array if ARRAY is 1 (batched mode), else the one event.
-- At the end, done() prints one line: RESULT {json} with wrk's latency percentiles (us), its
-- error counts and the responses by status code, summed over the threads.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a"):gsub("%s+$", "")
  file:close()
  prefix = args[2] .. "-" .. thread_id .. "-"
  events = tonumber(args[3])
  array = args[4] == "1"
  headers = { ["Content-Type"] = args[5] }
  sent = 0
  statuses = {}
end

local function event(now)
  sent = sent + 1
  local id = prefix .. sent
  return (template:gsub("__ID__", id):gsub("__TIME__", now))
end

function request()
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local body
  if array then
    local batch = {}
    for i = 1, events do
      batch[i] = event(now)
    end
    body = "[" .. table.concat(batch, ",") .. "]"
  else
    body = event(now)
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      codes[status] = (codes[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(codes) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"duration_us": %d, "requests": %d, "bytes": %d, "statuses": {%s}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, '
      .. '"p99_9": %d, "max": %d}}\n',
    summary.duration, summary.requests, summary.bytes, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
