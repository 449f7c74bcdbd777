-- wrk script: POST /api/v1/tasks/enqueue {"task_name":"bmos.noop"} with a bearer token, on
-- every keep-alive connection; the cross-check of bmos-taskbench --scenario http.
-- The token comes from the environment (BMOS_TOKEN); bench/http_wrk.sh mints it and runs wrk.
--   BMOS_TOKEN=... wrk -t1 -c64 -d5s --latency -s bench/wrk_enqueue.lua http://127.0.0.1:PORT
local token = os.getenv("BMOS_TOKEN")
if token == nil or token == "" then
  error("set BMOS_TOKEN to a JWT signed with the server's BMOS_JWT_SECRET")
end
wrk.method = "POST"
wrk.path = "/api/v1/tasks/enqueue"
wrk.body = '{"task_name":"bmos.noop"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
