-- Sends each pre-made request at most once. Arguments after `--`:
--   FILE METHOD PATH THREADS DELAY_MS [HEADER ...]
-- FILE holds one request per line: a body for POST (sent to PATH), a path for GET; a line
-- "KEY<tab>BODY" also sends the header Idempotency-Key: KEY.
-- Thread t of THREADS takes lines t, t+THREADS, ... A thread that has sent its share sends
-- GET /health instead and the run is reported as exhausted (the pool was too small), so no
-- request is ever repeated. DELAY_MS > 0 paces each connection. done() prints one line of
-- JSON, with `issued` (pool requests handed out) and `ok` (pool requests answered below 400;
-- the filler's answer, {"status":"ok"} from /health, is not counted).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, method, path, count = args[1], args[2], args[3], tonumber(args[4])
  pause = tonumber(args[5])
  local headers = {}
  for i = 6, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  if method ~= "GET" then headers["Content-Type"] = "application/json" end
  requests = {}
  local n = 0
  for line in io.lines(file) do
    if n % count == id and #line > 0 then
      -- "KEY<tab>BODY" sends BODY with Idempotency-Key: KEY.
      local key, body = line:match("^([^\t]+)\t(.*)$")
      local these = headers
      if key then
        these = {}
        for name, value in pairs(headers) do these[name] = value end
        these["Idempotency-Key"] = key
        line = body
      end
      if method == "GET" then
        requests[#requests + 1] = wrk.format("GET", line, these)
      else
        requests[#requests + 1] = wrk.format(method, path, these, line)
      end
    end
    n = n + 1
  end
  index = 0
  exhausted = 0
  ok = 0
  filler = wrk.format("GET", "/health")
  filler_body = '{"status":"ok"}'
end

function delay()
  return pause
end

function request()
  if not primed then
    -- wrk asks each thread for one request that it never sends: give it the filler.
    primed = true
    return filler
  end
  if index >= #requests then
    exhausted = 1
    return filler
  end
  index = index + 1
  return requests[index]
end

function response(status, headers, body)
  if status < 400 and body ~= filler_body then ok = ok + 1 end
end

function done(summary, latency, requests)
  local issued, exhausted, answered = 0, 0, 0
  for _, thread in ipairs(threads) do
    issued = issued + thread:get("index")
    exhausted = exhausted + thread:get("exhausted")
    answered = answered + thread:get("ok")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"durationUs":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"issued":%d,"exhausted":%d,"ok":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, issued, exhausted, answered))
end
