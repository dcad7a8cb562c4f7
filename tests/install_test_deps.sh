#!/usr/bin/env bash
# What the test suite needs beyond `pip install -e '.[test]'`:
#  - clang++ (libFuzzer) for the fuzz smoke run, from Debian's packages, best effort: without it
#    tests/test_fuzz.py is skipped and says why;
#  - valgrind, best effort, for the second engine of the leak check (tests/test_leaks.py runs under
#    LeakSanitizer without it);
#  - the real-export tier's CPU torch, ultralytics and transformers (tests/realexport/install_deps.sh).
set -euo pipefail
if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -q valgrind >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q valgrind >/dev/null 2>&1; }; } \
    && echo "installed valgrind for the leak check" \
    || echo "valgrind could not be installed: the leak check runs under LeakSanitizer only"
fi
if ! command -v clang++ >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q clang >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q clang >/dev/null 2>&1; }; } \
      && echo "installed clang for the fuzz smoke run" \
      || echo "clang could not be installed: the fuzz smoke run will be skipped"
  else
    echo "no clang++ and no way to install it here: the fuzz smoke run will be skipped"
  fi
fi
bash "$(dirname "$0")/realexport/install_deps.sh"
