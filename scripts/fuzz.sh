#!/usr/bin/env bash
# Fuzz xconnect's parsers and pipeline with cargo-fuzz (libFuzzer + ASan) on
# the stable toolchain.
#
#   scripts/fuzz.sh                    every target, 60 s each
#   scripts/fuzz.sh TARGET [SECONDS]   one target
#   scripts/fuzz.sh all SECONDS        every target, SECONDS each
#   scripts/fuzz.sh seed               rewrite the seed corpus (fuzz/corpus)
#   scripts/fuzz.sh coverage           line coverage of src/wire from every target's corpus
#
# FUZZ_SEED=N fixes libFuzzer's seed (CI sets it, so a CI run explores the
# same inputs as a run of the same commit here). A finding is minimised and
# saved as fuzz/regressions/TARGET/<name>, which
# `cargo test` (tests/fuzz_corpus.rs) replays from then on; the script then
# exits 1. Installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

TARGETS=(wire_parse tag_rewrite pipeline config pcap_trace l3_reply fpm_decode control)
[ -f fuzz/fuzz_targets/lpm_diff.rs ] && TARGETS+=(lpm_diff)

dict_for() {
  case "$1" in
    config) echo "-dict=dict/config.dict" ;;
    wire_parse|pipeline|tag_rewrite|l3_reply) echo "-dict=dict/wire.dict" ;;
    control) echo "-dict=dict/control.dict" ;;
    *) echo "" ;;
  esac
}

ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
  fi
}

run_target() {
  local t=$1 secs=$2
  local corpus_seed="fuzz/corpus/$t" work="fuzz/corpus-run/$t" art="fuzz/artifacts/$t"
  mkdir -p "$work" "$art" "$corpus_seed"
  echo "==> fuzzing $t for ${secs}s"
  local dict
  dict=$(dict_for "$t")
  # The committed seeds are read-only input; new inputs go to the run corpus.
  local rc=0
  (cd fuzz && cargo fuzz run --fuzz-dir . "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 ${dict:+"$dict"} \
        ${FUZZ_SEED:+"-seed=$FUZZ_SEED"} \
        -artifact_prefix="artifacts/$t/") >"fuzz/artifacts/$t.log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs)' "fuzz/artifacts/$t.log" | tail -n 4 || true
  shopt -s nullglob
  local found=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
  shopt -u nullglob
  if [ ${#found[@]} -gt 0 ]; then
    mkdir -p "fuzz/regressions/$t"
    for f in "${found[@]}"; do
      local name min
      name=$(basename "$f")
      min="fuzz/regressions/$t/$name"
      echo "==> finding in $t: $f — minimising into $min"
      (cd fuzz && cargo fuzz tmin --fuzz-dir . "$t" "../$f" -- -runs=2000 2>&1 | tail -n 3) || true
      local minimized
      minimized=$(ls -t "$art"/minimized-from-* 2>/dev/null | head -n 1 || true)
      cp "${minimized:-$f}" "$min"
      rm -f "$f" ${minimized:+"$minimized"}
    done
    echo "FINDING: $t — regression inputs saved under fuzz/regressions/$t"
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "fuzzing $t failed to run (exit $rc); see fuzz/artifacts/$t.log:"
    tail -n 20 "fuzz/artifacts/$t.log"
    return 1
  fi
  echo "==> $t: no finding in ${secs}s"
}

# Line coverage of src/wire from the corpus of every target (committed
# seeds, regressions and the local run corpus), merged.
coverage() {
  rustup component add llvm-tools-preview >/dev/null 2>&1 || true
  local host sysroot bin_dir profiles=() objects=()
  host=$(rustc -vV | sed -n 's/host: //p')
  sysroot=$(rustc --print sysroot)
  bin_dir="$sysroot/lib/rustlib/$host/bin"
  for t in "${TARGETS[@]}"; do
    local dirs=("corpus/$t")
    [ -d "fuzz/corpus-run/$t" ] && dirs+=("corpus-run/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("regressions/$t")
    (cd fuzz && cargo fuzz coverage --fuzz-dir . "$t" "${dirs[@]}" >/dev/null 2>&1)
    profiles+=("fuzz/coverage/$t/coverage.profdata")
    if [ ${#objects[@]} -eq 0 ]; then
      objects+=("fuzz/target/$host/coverage/$host/release/$t")
    else
      objects+=(-object "fuzz/target/$host/coverage/$host/release/$t")
    fi
  done
  "$bin_dir/llvm-profdata" merge -sparse "${profiles[@]}" -o fuzz/coverage/merged.profdata
  "$bin_dir/llvm-cov" report -instr-profile=fuzz/coverage/merged.profdata "${objects[@]}" src/wire/*.rs
}

case "${1:-all}" in
  seed)
    cargo test --test fuzz_corpus -- --ignored write_seed_corpus
    ;;
  coverage)
    ensure_cargo_fuzz
    coverage
    ;;
  all)
    ensure_cargo_fuzz
    secs=${2:-60}
    status=0
    for t in "${TARGETS[@]}"; do run_target "$t" "$secs" || status=1; done
    exit $status
    ;;
  *)
    ensure_cargo_fuzz
    run_target "$1" "${2:-60}"
    ;;
esac
