-- wrk script for bench/intake.py: replays pre-signed, unique deliveries from a file.
-- Each line: body TAB signature TAB webhook id. Lines before the offset (the third argument) were
-- sent by an earlier run and are skipped, so that every delivery a run sends is new; after it,
-- thread i takes lines i, i+n, i+2n, ...
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads, offset = args[1], tonumber(args[2]), tonumber(args[3] or "0")
  requests_list = {}
  local i = 0
  for line in io.lines(path) do
    if i >= offset and (i - offset) % nthreads == id then
      local body, sig, hook = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)")
      table.insert(requests_list, wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Shopify-Topic"] = "customers/data_request",
        ["X-Shopify-Hmac-Sha256"] = sig,
        ["X-Shopify-Webhook-Id"] = hook,
        ["X-Shopify-Shop-Domain"] = "bench.myshopify.com",
        ["X-Shopify-API-Version"] = "2026-01",
      }, body))
    end
    i = i + 1
  end
  position = 0
end

function request()
  -- Past the end a delivery would be sent twice (a duplicate, answered without a new row): stop.
  position = position + 1
  if position > #requests_list then
    wrk.thread:stop()
  end
  return requests_list[math.min(position, #requests_list)]
end
