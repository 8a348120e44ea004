#!/usr/bin/env bash
# Smoke test of a deployed OCR serving stack (or of `make run`): liveness, readiness of the
# model, database and queue, one OCR job end to end through the asynchronous API, and the
# metrics endpoint. Exits non-zero, naming the failed step, on the first problem.
#
#   scripts/smoke_test.sh [BASE_URL]          # default http://127.0.0.1:8000
#
# Environment:
#   OCR_API_KEY       bearer token when the API requires keys (OCR_API_KEY_HASHES set)
#   SMOKE_TIMEOUT_S   how long to wait for the job to finish (default 120)
#   SMOKE_IMAGE       an image to send instead of the built-in one
#   SMOKE_EXPECT      text the result must contain (default "4711", shown by the built-in image)
#
# Needs curl and python3 (JSON parsing only; no packages).
set -euo pipefail

BASE_URL="${1:-${SMOKE_BASE_URL:-http://127.0.0.1:8000}}"
BASE_URL="${BASE_URL%/}"
TIMEOUT_S="${SMOKE_TIMEOUT_S:-120}"
EXPECT="${SMOKE_EXPECT:-4711}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '==> %s\n' "$*"; }
fail() { printf 'SMOKE TEST FAILED: %s\n' "$*" >&2; exit 1; }

for tool in curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done

AUTH=()
if [ -n "${OCR_API_KEY:-}" ]; then
  AUTH=(-H "Authorization: Bearer ${OCR_API_KEY}")
fi

# request METHOD PATH [curl args...]: body to $WORK/body, headers to $WORK/headers; prints the status.
request() {
  local method="$1" path="$2"; shift 2
  curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 30 \
    -X "$method" ${AUTH[@]+"${AUTH[@]}"} "$@" "$BASE_URL$path" \
    || fail "$method $path: cannot connect to $BASE_URL"
}

# json EXPR: evaluates a Python expression on the last response body (bound to `b`).
json() {
  python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$WORK/body" "$1" 2>/dev/null || fail "unexpected response body: $(head -c 500 "$WORK/body")"
}

step "liveness: GET $BASE_URL/healthz"
status="$(request GET /healthz)"
[ "$status" = 200 ] || fail "/healthz answered $status"
grep -qi '^x-request-id:' "$WORK/headers" || fail "/healthz carries no X-Request-ID header"

step "readiness of model, database and queue: GET /readyz"
status="$(request GET /readyz)"
checks="$(json 'json.dumps(b.get("checks"))')"
[ "$status" = 200 ] || fail "/readyz answered $status: $checks"
[ "$(json 'b["ready"]')" = True ] || fail "/readyz reports not ready: $checks"
for dependency in database queue; do
  [ "$(json "b['checks']['$dependency']")" = ok ] || fail "$dependency not reachable: $checks"
done
echo "    $checks"

if [ -n "${SMOKE_IMAGE:-}" ]; then
  cp "$SMOKE_IMAGE" "$WORK/image"
else
  base64 -d > "$WORK/image" <<'PNG'
iVBORw0KGgoAAAANSUhEUgAAAggAAABQCAAAAABZ1dIMAAAHUUlEQVR42u2dbXBU1RmAn7tLEiAbSPhOTSGm4CSImFoUQaSSDVGI
RLSMOGpw5EOKVqtl1KnSDlJHGaYtMK22fKgdsIpOOoBWoAkSEh0RaBWlg1CIWqQSDAk1Xxiy7OmPvXv37t1zdzedaWdg3+fXPee8
5+Td3Cf33HNOIIZCEMAj3wJBRBBEBEFEEEQEQUQQRARBRBBEBEFEEEQEQUQQRARBRBBEBEFEEEQEQUQQRARBRBBEBEFEEEQEQUQQ
LmIRSg1jiXynRYT/jjsM44f/m26zDcMwjoWu2w0HY8ygpvo1D980wmMY10b1dam+COiVcupveT1ea5YpyBBtq0u1PBEuQM4siv+4
SNWpIeWeCD9upKzaKvns/wZ4zkbSK0OXxuCiwqLCorm7oju7VIsIFx7bNlIxo1rb9HUVzBwYus78KnTjHSEu1TI1XHC0LqTf8y5t
fzwL82XV4CS4uXJMdlrOyPF3rm6wrwI/WXS5r99164MAqurmYelDy7fa+3WuvbXAl5lf8bsO7bBrexnGjE4A9j52dW76wLEPvh8b
9Y1hvAZrQi/yu81KTbwjSW23KBafYMUlLp94PeSXpu76Uek5MjYS0j9U5Ycn1VOmOf42pU6XmAH3Bq1+Vd8K9xr6arjOD0+alz8H
5gWUUup4uTX+rWecX/2sPcNa5RbvTFLTLZoamBxU64CjMW0fAE856vwwXjOMS/UFjYsIXw1FK8IzkQW76vyeVVgW7rfaPn2ucIoQ
mAf8TCml1N+G2QKLmhOKoIuPSTKRCG359D6iXES4HzzHRQQHjwKVNY1dHZ/v33jPFdbHn+5N/8mHHa3brwDevZ+hqxq6Tq0bAL1P
hkLqPOC5b29r296FHjCqo0XoKAfv70P38BLwVO441d2ycxZQHpvBbFhoE1MXr0syupuDB+BZ5SJCZzbcpEQEB9+FxzQfn751Siml
WvJgvKfwS6WUUns88GullFLB0ZC2JRS9NQ0KzttFaLoGem8Otd4O/evNcdcCbycQQRuvSzKeCHUGxd1uImwAqlJYBJeXxdNwo67+
mckA5DwCe9mUC8C10yC0sK45BE/cEoqseAI+fcPW9bOJ+8jZOROAo1Xw4vVmw4I58Fz8Fxl9vFuSLpydp7wvuC6X18PgCjlrcDIM
3tRUZ99nXpQCN15pFqbCQQDeBN9i6wXdFzXGBxOO8u13rwsVXg0y+jaraSHsjv+fu+njXZJ0Y8kxFl/lqlo9zEkTEZzcAqtm/qnF
WX19H/PiO6YMAIyEJgD2QGmWtWtfBu9ZPau/f4oxe0abpTpbbxgLLSfiZqmPd0nShfdXMXIpcR4IzENEcPLIONg6a9Blleu/sFcX
WFtshq3gg84gwHEojgQXw/Hw9fab25n8jrWCPwzP987ISE9L6+X1erKA5rhZ6uNdktTTNTdorO3j1hrYABOLRIQY+tY9ngXq6MsL
Rkyxbaz77P2sghcIAvwbBkWCB0NnV3hi6KbXmmyrqQUCXefOdQcC54NBBdARN0t9vEuSepZ+wvwprq1/bkzlXcV4O4t9l5/a/PDV
aaB2+x9PenMqphTeVpiSSaCswWrqTtDViUt8D5Js+CW5K4g3M2TdLiJo6TNz5b6vd/6oH6zYlORgOXA6UmqGvunm9cTtWXwx+Ui4
aSCsjl69TIo7sGt80kmeDHAyx/zlkwXAKMPIi7T+awfckSkiuMvg/83h4QkXdxbD4aNI6QCMiLxm/qU/X95wyCzlw4GeZBk3vodJ
6njpfKrPDIlPH3MfhI+THGwC1LSHC+3VMMHWtjOHxhvMkfzwxtn4Y3nt00Wi+EiS3kSzjHZKewnGXCMixGcABJIcrALaV4YLK9vA
vkMzbtcgmko+BGC2QfOy+GNlQqtVSBhvJRnVzcYk27Ri7ixGVqy7Pk35B4KLCB1T6633tBdhVJKDTR0NT28LXb/1NBTMsLcW1w6h
2b8f4MrbYPly60f3zNLfxoyVZ58NtPHaJPN6OOmEXxUz7k5xEfRnDW1w2ZIdJ745989XrgJ+5TxNVsoLNeHrd4Bu69DJu2hfW/v+
RV4wahynj4dyof97SinVOBwofu5ga3fzgXU/yOAXMSlsA376WbdZ0sVrk4zupsd51tCcAbO1kSl/6NQWvZ/YnawICY6h1T/yIKte
KaX+fmnUl4gV4VxuuK3WJV6bpKNbUiKswvZhTByr0QfiV1+0h06+t6dad9Qzf0fyv9j40OvWjRjyyqMxzaPqRtA2rRa4/K/3REYd
tOyhmNC0DT57UROvTdLRLSlegHx/qs8MLve4pOTz1+o/biKncNJdhT0Zb9b0l9/6qEkNHjttju6OFNSXNHSUbymDAX9Yumn34eau
7EvHTS/TnfaUHlxTe6zV2krSxGuTdHRLgn0HYa6R6iIY8jedhOSWj4KIIIgIgoggiAiCiCCICIIgIggigiAiCCKCICIIIoIgIggi
giAiCCKCICIIIoIgIggigiAiCCKCICIIIoIgIggigvB/4T8L8E0lqLckzgAAAABJRU5ErkJggg==
PNG
fi

step "submit one job: POST /v1/jobs"
status="$(request POST /v1/jobs -F "image=@$WORK/image;type=image/png")"
[ "$status" = 202 ] || fail "POST /v1/jobs answered $status: $(head -c 500 "$WORK/body")"
job_id="$(json 'b["job_id"]')"
echo "    job $job_id"

step "wait for the result: GET /v1/jobs/$job_id (up to ${TIMEOUT_S} s)"
deadline=$(( $(date +%s) + TIMEOUT_S ))
while :; do
  status="$(request GET "/v1/jobs/$job_id")"
  [ "$status" = 200 ] || fail "GET /v1/jobs/$job_id answered $status"
  state="$(json 'b["status"]')"
  case "$state" in
    succeeded) break ;;
    failed) fail "job $job_id failed: $(json 'b["error"]')" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "job $job_id still $state after ${TIMEOUT_S} s"
  sleep 0.5
done
text="$(json '" ".join(b["result"]["text"].split())')"
echo "    text: $text"
case "$text" in
  *"$EXPECT"*) ;;
  *) fail "result text does not contain '$EXPECT'" ;;
esac

step "metrics: GET /metrics"
status="$(request GET /metrics)"
[ "$status" = 200 ] || fail "/metrics answered $status"
grep -q '^ocr_' "$WORK/body" || fail "/metrics exposes no ocr_* metric"

echo "SMOKE TEST PASSED ($BASE_URL)"
