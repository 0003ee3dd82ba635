#!/usr/bin/env bash
# One-stop set-up for a fresh Debian/Ubuntu machine, then the demo or the tests.
#
#   bash scripts/dev.sh demo [FOLDER]   # synthetic focus bracket -> stacked result
#   bash scripts/dev.sh test [PYTEST ARGS]   # the whole test suite, real Hugin included
#   bash scripts/dev.sh gui [OPTIONS]   # the no-terminal page (focuswrap gui) in your browser
#   bash scripts/dev.sh check           # ruff (lint, format), mypy (strict), the import-layer contract
#
# With COVERAGE=1, `test` measures coverage (the CLI runs the tests start as child processes
# included) and prints the report; there is no threshold.
#
# It installs what is missing with apt-get (Hugin's hugin-tools and enfuse,
# python3-venv), creates .venv, installs focuswrap into it (non-editable, as a
# user gets it) and runs the job.  Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

job="${1:-}"
case "$job" in
  demo|test|gui|check) shift ;;
  *) echo "usage: bash scripts/dev.sh demo [FOLDER] | test [PYTEST ARGS] | gui [OPTIONS] | check" >&2; exit 2 ;;
esac

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
command -v align_image_stack >/dev/null 2>&1 || missing+=(hugin-tools)
command -v enfuse >/dev/null 2>&1 || missing+=(enfuse)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ "$job" = test ]; then
  # The page's end-to-end tests drive Debian's Chromium through its chromedriver (nothing downloaded at run time).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing with apt-get: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
extras="test"
if [ "$job" = check ] || [ "${COVERAGE:-}" = 1 ]; then extras="test,dev"; fi
.venv/bin/python -m pip install -q --disable-pip-version-check ".[$extras]"

case "$job" in
  demo)
    exec .venv/bin/focuswrap demo "${1:-demo-output}" --force
    ;;
  gui)
    exec .venv/bin/focuswrap gui "$@"
    ;;
  check)
    # Every check runs (so one run shows all findings); any finding fails.
    rc=0
    .venv/bin/ruff check . || rc=1
    .venv/bin/ruff format --check . || rc=1
    .venv/bin/mypy || rc=1
    PYTHONPATH=. .venv/bin/lint-imports || rc=1
    exit "$rc"
    ;;
  test)
    # pytest exits 5 when it collected no test: that is a failure here, not a pass.
    set +e
    if [ "${COVERAGE:-}" = 1 ]; then
      rm -f .coverage .coverage.*
      export COVERAGE_DATA_DIR="$PWD"
      .venv/bin/python -m coverage run -m pytest "$@"
      rc=$?
      .venv/bin/python -m coverage combine -q >/dev/null 2>&1
      .venv/bin/python -m coverage report || true
    else
      .venv/bin/python -m pytest "$@"
      rc=$?
    fi
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing." >&2; exit 1; fi
    exit "$rc"
    ;;
esac
