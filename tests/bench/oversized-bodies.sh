#!/usr/bin/env bash
# Peak memory of a bookhub server while 32 clients send oversized booking bodies for 10 s:
# half send ~1 MiB of empty rooms (refused by size, 413), half ~60 KiB of them (15,000 rooms) (parsed,
# refused by the room count, 422). Prints the answers' statuses and the server's peak RSS.
#
#   cargo build --release && tests/bench/oversized-bodies.sh        # BENCH_BIN picks another binary
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${BENCH_BIN:-target/release/bookhub}"
clients="${CLIENTS:-32}" seconds="${SECONDS_RUN:-10}"
dir=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export BOOKHUB_DATABASE_URL="sqlite://$dir/bench.db?mode=rwc" BOOKHUB_LISTEN="127.0.0.1:$port" \
    BOOKHUB_LOG=warn BOOKHUB_RATE_LIMIT__PER_MINUTE=100000000 BOOKHUB_RATE_LIMIT__BURST=100000000
key=$("$bin" agency create --name Bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$bin" serve 2>"$dir/server.log" &
server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
idle=$(awk '/VmRSS/{print $2}' "/proc/$server/status")

python3 - "$port" "$key" "$clients" "$seconds" <<'PY'
import http.client, json, sys, threading, time, collections
port, key, clients, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
base = {"supplier": "sandbox", "hotel_code": "PMI-00042", "check_in": "2027-03-15", "check_out": "2027-03-18",
        "total": {"amount": "450.00", "currency": "EUR"}}
bodies = [json.dumps(dict(base, rooms=[{}] * n)).encode() for n in (350_000, 15_000)]
statuses, lock = collections.Counter(), threading.Lock()
def client(i):
    conn, body, n, deadline = None, bodies[i % 2], 0, time.time() + seconds
    while time.time() < deadline:
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/bookings", body, {"Authorization": f"Bearer {key}",
                         "Content-Type": "application/json", "Idempotency-Key": f"bench-{i}-{n}"})
            response = conn.getresponse(); response.read(); status = response.status
            if response.getheader("connection", "").lower() == "close": conn.close(); conn = None
        except (OSError, http.client.HTTPException):
            status = "connection closed"; conn = None
        n += 1
        with lock: statuses[status] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print("answers:", dict(statuses))
PY
peak=$(awk '/VmHWM/{print $2}' "/proc/$server/status")
echo "idle RSS: $((idle / 1024)) MB, peak RSS: $((peak / 1024)) MB ($clients clients, ${seconds}s, $bin)"
