#!/usr/bin/env bash
# Prints Warden's decision for a handful of sample requests against a bundle, with the same
# engine the filter runs (bundle-builder explain).
set -euo pipefail
builder=$1
bundle=$2

row() { printf '%-58s %-7s %-20s %-26s %s\n' "$@"; }
row "REQUEST" "RESULT" "REASON" "SERVICE" "POLICY"
ask() {
  local label=$1; shift
  local json
  json=$("$builder" explain --bundle "$bundle" --output json "$@")
  local field
  field() {
    local v
    v=$(sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" <<<"$json")
    [ "$v" = null ] && v=-
    echo "$v"
  }
  local result
  result=$(field decision)
  [ "$(field dryRun)" = true ] && result="$result*"
  row "$label" "$result" "$(field reason)" "$(field service)" "$(field policy)"
}
orders=spiffe://cluster.local/ns/orders/sa/api
web=spiffe://cluster.local/ns/web/sa/frontend
billing=spiffe://cluster.local/ns/pay/sa/billing
ask "orders/api -> orders-db.mesh.internal:5432 (tcp)" --from $orders --to orders-db.mesh.internal:5432 --protocol tcp
ask "web/frontend -> orders-db.mesh.internal:5432 (tcp)" --from $web --to orders-db.mesh.internal:5432 --protocol tcp
ask "pay/billing -> GET https://api.payments.example" --from $billing --to api.payments.example:443 --method GET
ask "web/frontend -> GET https://eu.payments.example" --from $web --to eu.payments.example:443 --method GET
ask "web/frontend -> http://api.payments.example:8443" --from $web --to api.payments.example:8443
ask "web/frontend -> http://evil.example" --from $web --to evil.example
ask "web/frontend -> http://0xa.30.0x1.1:8080 (hex IP)" --from $web --to 0xa.30.0x1.1:8080
ask "web/frontend -> http://[::ffff:10.30.1.1]:8080" --from $web --to "[::ffff:10.30.1.1]:8080"
ask "web/frontend -> 10.99.0.1:5432 (tcp)" --from $web --to 10.99.0.1:5432 --protocol tcp
ask "web/frontend -> http://exa mple.com" --from $web --to "exa mple.com"
echo
echo "A TCP connection carries no name: the client dials the name's virtual address, which"
echo "Warden's DNS (or Istio's, from the ServiceEntry) answers for the name:"
"$builder" explain --bundle "$bundle" --from $orders --to orders-db.mesh.internal:5432 --protocol tcp | sed 's/^/  /'
echo
echo "* allowed because the policy is in dry-run mode; the reason is the denial it would make."
echo "Ask about any request yourself:"
echo "  $builder explain --bundle $bundle --from $web --to evil.example"
