#!/bin/sh
# tests/bench/w6_tx.sh: benchmark W6 as db:tx - N purchases made by C tasks
# inside ONE job, each purchase two transactions: read the balance, return
# early if short, debit, insert the order; then insert the receipt. The
# same workload as shared/peers/tarantool/purchases.lua (C fibers,
# wal_mode = fsync), same N and C, in the same run (target: awaitd >= 1.0x
# Tarantool). awaitd runs with synchronous = full: every db:tx return is on
# disk before its task goes on.
#
#   sh tests/bench/w6_tx.sh     (from the repository root or anywhere)
#
# The job (w6tx.lua, written to a temp scripts dir) times itself with
# async.now() from the first transaction to the last commit, so the
# figure is the purchases alone (no enqueue, no claim). Accounts 1..1000
# hold 1,000,000 each, as in the peer; orders and receipts go to tables
# of the bench's own (w6_orders, w6_receipts: an id and the account, like
# the peer's spaces). Afterwards the database is checked:
# N orders, N receipts, 7*N debited.
#
# Lines on stdout, each one JSON object:
#   {"bench":"w6_tx","impl":"awaitd",...,"purchases_per_s":..}
#   {"bench":"w6_tx","impl":"tarantool",...,"purchases_per_s":..}
#   {"bench":"w6_tx","workload":"W6 purchases as db:tx","ratio_vs_tarantool":..,"target":1.0,"met":..}
# A tool that is missing gives {"bench":"w6_tx","impl":..,"skipped":"reason"}
# and the script still exits 0. Environment: PEERS, BUILD, BENCH_TIMEOUT,
# BENCH_KEEP as in w6.sh; W6_N (default 100000, a multiple of W6_C) and
# W6_C (default 100).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=w6_tx
. "$HERE/lib.sh"
bench_init w6_tx
N=${W6_N:-100000}
C=${W6_C:-100}
LIMIT=${BENCH_TIMEOUT:-600}

w6_setup w6_tx

# ---- awaitd ---------------------------------------------------------------

A_LINE=
if [ "$AWAITD_OK" = 1 ]; then
	A=$TMP/awaitd
	DB=$A/w6.db
	mkdir -p "$A/scripts"
	cat >"$A/scripts/w6tx.lua" <<'EOF'
-- N purchases by C tasks, each two db:tx, as the Tarantool peer does them
return { timeout = 600000, run = function(ctx, args)
  local n, c, price = args.n, args.c, 7
  local db, short = ctx.db, 0
  local function worker(w)
    for k = 1, n // c do
      local a = (w * 7919 + k) % 1000 + 1
      local ok = assert(db:tx(function(tx)
        local row = tx:one("SELECT balance FROM accounts WHERE id = ?", a)
        if row.balance < price then return "short" end
        tx:exec("UPDATE accounts SET balance = balance - ? WHERE id = ?", price, a)
        tx:exec("INSERT INTO w6_orders (account, price) VALUES (?, ?)", a, price)
        return "ok"
      end))
      if ok == "short" then short = short + 1 else
        assert(db:tx(function(tx)
          return tx:exec("INSERT INTO w6_receipts (account) VALUES (?)", a)
        end))
      end
    end
  end
  local fns = {}
  for w = 1, c do fns[w] = function() worker(w) end end
  local t0 = async.now()
  assert(async.all(fns))
  local ms = async.now() - t0
  return { n = n, ms = ms, short = short }
end }
EOF
	SOCK=$A/s
	if ! w6_db "$DB" "CREATE TABLE w6_orders (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, price INTEGER NOT NULL);
			CREATE TABLE w6_receipts (id INTEGER PRIMARY KEY, account INTEGER NOT NULL);"; then
		printf '{"bench":"w6_tx","impl":"awaitd","error":"could not create the database with 1000 accounts"}\n'
	else
		"$AWAITD" --scripts "$A/scripts" --db "$DB" --migrations "$ROOT/migrations" --socket "$SOCK" \
			>"$A/awaitd.log" 2>&1 &
		apid=$!
		PIDS="$PIDS $apid"
		if ! wait_for 200 "$AWAITCTL" -s "$SOCK" ping; then
			printf '{"bench":"w6_tx","impl":"awaitd","error":"daemon not ready: %s"}\n' "$(jstr "$(tail -n 1 "$A/awaitd.log")")"
		else
			thread_ticks "$apid" >"$A/ticks0"
			res=$(timeout "$LIMIT" "$AWAITCTL" -s "$SOCK" --json run w6tx "{\"n\":$N,\"c\":$C}" --timeout $((LIMIT * 1000)) 2>&1)
			thread_ticks "$apid" >"$A/ticks1"
			stats=$("$AWAITCTL" -s "$SOCK" --json stats 2>/dev/null)
			stop_pid "$apid"
			ms=$(num "$res" ms)
			if [ -z "$ms" ]; then
				printf '{"bench":"w6_tx","impl":"awaitd","error":"%s"}\n' "$(jstr "$res")"
			else
				set -- $(sqlite3 -separator ' ' "$DB" "SELECT (SELECT count(*) FROM w6_orders), (SELECT count(*) FROM w6_receipts),
					(SELECT 1000 * 1000000 - sum(balance) FROM accounts WHERE id BETWEEN 1 AND 1000)")
				ok=$([ "${1:-}" = "$N" ] && [ "${2:-}" = "$N" ] && [ "${3:-}" = $((7 * N)) ] && echo true || echo false)
				A_LINE=$(printf '{"bench":"w6_tx","impl":"awaitd","synchronous":"full","n":%s,"tasks":%s,"ms":%.0f,"purchases_per_s":%.0f,"orders":%s,"receipts":%s,"debited":%s,"consistent":%s,"store":%s,"threads":%s}' \
					"$N" "$C" "$ms" "$(awk -v n="$N" -v t="$ms" 'BEGIN { print n / t * 1000 }')" \
					"$(j "${1:-}")" "$(j "${2:-}")" "$(j "${3:-}")" "$ok" "$(json_obj "$stats" store)" \
					"$(threads_json "$apid" "$A/ticks0" "$A/ticks1")")
				printf '%s\n' "$A_LINE"
			fi
		fi
	fi
else
	skip awaitd "$AWAITD_WHY"
fi

# ---- Tarantool ------------------------------------------------------------

w6_tarantool

a=$(num "$A_LINE" purchases_per_s)
t=$(num "$T_LINE" purchases_per_s)
rt=$(ratio "$a" "$t")
met=$(met "$rt" 1)
printf '{"bench":"w6_tx","workload":"W6 purchases as db:tx","n":%s,"tasks":%s,"awaitd_per_s":%s,"tarantool_per_s":%s,"ratio_vs_tarantool":%s,"target":1.0,"met":%s}\n' \
	"$N" "$C" "$(j "$a")" "$(j "$t")" "$rt" "$met"
exit 0
