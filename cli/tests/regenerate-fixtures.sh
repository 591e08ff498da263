#!/usr/bin/env bash
# Regenerates the CLI's checked-in snapshots (cli/tests/data) from the `leak_diff` test program,
# then the reference outputs (cli/tests/expected, crates/tracealloc-{report,snapshot}/tests/expected). Run from
# anywhere; commit what changes.
#
# old.json leaks 10 blocks of 256 bytes at leak_diff's leaking line, new.json 15; leak-line.txt
# names that line (`file:line`) for the tests. lifetimes.json is new.json's run in lifetimes mode
# (TRACEALLOC_LIFETIMES=1), for the DHAT export.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet -p tracealloc-tests --bin leak_diff
data=cli/tests/data
./target/debug/leak_diff 10 "$data/old.json" > /dev/null
./target/debug/leak_diff 15 "$data/new.json" > "$data/leak-line.txt"
TRACEALLOC_LIFETIMES=1 ./target/debug/leak_diff 15 "$data/lifetimes.json" > /dev/null
BLESS=1 cargo test --quiet -p tracealloc-cli --test cli > /dev/null
BLESS=1 cargo test --quiet -p tracealloc-report --test golden > /dev/null
BLESS=1 cargo test --quiet -p tracealloc-snapshot --test golden > /dev/null
echo "regenerated $data, cli/tests/expected and crates/tracealloc-report/tests/expected"
