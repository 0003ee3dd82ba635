#!/usr/bin/env bash
# Is the package ready to publish?  Builds the sdist and the wheel as PyPI would
# get them, checks their metadata and contents, then installs the wheel ALONE
# into a fresh venv (no source tree on the path) and runs it as a user would:
#
#   bash scripts/check_package.sh            # everything below, in a temp folder
#   KEEP=1 bash scripts/check_package.sh     # keep that folder (dist/, venvs, results)
#
# 1. python -m build: the sdist, then the wheel built FROM the sdist (so a file
#    missing from the sdist breaks the build here, not on a user's machine)
# 2. twine check --strict: the metadata and README render on PyPI
# 3. contents: every bundled preset, focuswrap/py.typed, GUI assets (when there
#    is a focuswrap/gui/static folder) in the wheel; no caches or venvs in either
# 4. a fresh venv with only the wheel: focuswrap --version (the source's version),
#    focuswrap doctor, focuswrap demo DIR, and focuswrap stack on the real photos
#    in ../shared/stacks/pcb (skipped, with a message, when they are absent)
#
# Needs python3 with venv, Hugin's tools (scripts/dev.sh installs them) and the
# package registry for build, twine and focuswrap's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
python="${PYTHON:-python3}"

work="$(mktemp -d "${TMPDIR:-/tmp}/focuswrap-package.XXXXXX")"
if [ "${KEEP:-}" = "1" ]; then
  trap 'echo "check_package: kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
step() { echo "check_package: $*"; }
fail() { echo "check_package: FAILED: $*" >&2; exit 1; }
# pip's output goes to a log, shown only when it fails (its index warnings are noise here).
pipq() {
  "$1/bin/python" -m pip install -q --disable-pip-version-check "${@:2}" >>"$work/pip.log" 2>&1 \
    || { cat "$work/pip.log" >&2; fail "pip install ${*:2}"; }
}

step "building the sdist and the wheel"
"$python" -m venv "$work/build-venv"
pipq "$work/build-venv" build twine
"$work/build-venv/bin/python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "python -m build"; }
sdist=("$work"/dist/focuswrap-*.tar.gz)
wheel=("$work"/dist/focuswrap-*-py3-none-any.whl)
[ -f "${sdist[0]}" ] || fail "no sdist in $work/dist"
[ -f "${wheel[0]}" ] || fail "no pure-Python wheel in $work/dist"
step "built $(basename "${sdist[0]}") and $(basename "${wheel[0]}")"

step "twine check --strict"
"$work/build-venv/bin/twine" check --strict "${sdist[0]}" "${wheel[0]}"

step "checking what the wheel and the sdist hold"
"$python" - "$repo" "${wheel[0]}" "${sdist[0]}" <<'PY'
import sys
import tarfile
import zipfile
from pathlib import Path

repo, wheel, sdist = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as tar:
    # sdist members are prefixed with focuswrap-VERSION/
    in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}

problems = []
presets = sorted(p.name for p in (repo / "presets").glob("*.toml"))
if not presets:
    problems.append("the source tree has no presets/*.toml")
for name in presets:
    if f"focuswrap/presets/{name}" not in in_wheel:
        problems.append(f"wheel lacks the bundled preset focuswrap/presets/{name}")
    if f"presets/{name}" not in in_sdist:
        problems.append(f"sdist lacks presets/{name}")
for name in ("focuswrap/py.typed", "focuswrap/__init__.py", "focuswrap/cli.py"):
    if name not in in_wheel:
        problems.append(f"wheel lacks {name}")
static = repo / "focuswrap" / "gui" / "static"
assets = sorted(p.relative_to(repo).as_posix() for p in static.rglob("*") if p.is_file()) if static.is_dir() else []
for name in assets:
    if name not in in_wheel:
        problems.append(f"wheel lacks the GUI asset {name}")
for name in ("README.md", "pyproject.toml", "focuswrap/py.typed"):
    if name not in in_sdist:
        problems.append(f"sdist lacks {name}")
junk = ("__pycache__/", ".pyc", ".venv/", ".pytest_cache/", ".hypothesis/", ".git/")
for name in sorted(in_wheel | in_sdist):
    if any(j in name for j in junk):
        problems.append(f"junk in the package: {name}")
        break
if not any(n.endswith(".dist-info/entry_points.txt") for n in in_wheel):
    problems.append("wheel has no entry points (the focuswrap command)")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"  wheel: {len(in_wheel)} files, {len(presets)} presets, py.typed, {len(assets)} GUI assets")
print(f"  sdist: {len(in_sdist)} files")
PY

step "installing only the wheel into a fresh venv"
"$python" -m venv "$work/user-venv"
pipq "$work/user-venv" "${wheel[0]}"
fw="$work/user-venv/bin/focuswrap"
# Run from an empty folder, with the user's folders relocated: nothing may come
# from the source tree or from this machine's own focuswrap set-up.
mkdir -p "$work/run" "$work/home"
cd "$work/run"
export FOCUSWRAP_HOME="$work/home"
unset PYTHONPATH

where="$("$work/user-venv/bin/python" -c 'import focuswrap, os; print(os.path.dirname(focuswrap.__file__))')"
case "$where" in
  "$work/user-venv/"*) ;;
  *) fail "focuswrap was imported from $where, not from the fresh venv" ;;
esac

want="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/focuswrap/__init__.py")"
got="$("$fw" --version)"
step "focuswrap --version: $got"
[ "$got" = "focuswrap $want" ] || fail "focuswrap --version says '$got', the source says $want"

step "focuswrap doctor"
"$fw" doctor

step "focuswrap demo $work/demo"
"$fw" demo "$work/demo"
[ -s "$work/demo/stacked.jpg" ] || fail "the demo wrote no $work/demo/stacked.jpg"

pcb="$repo/../shared/stacks/pcb"
if compgen -G "$pcb/pcb_*.jpg" >/dev/null; then
  step "focuswrap stack ../shared/stacks/pcb/pcb_*.jpg -o $work/pcb/stacked.jpg"
  # -o into a folder that does not exist yet: focuswrap creates it.
  "$fw" stack "$pcb"/pcb_*.jpg -o "$work/pcb/stacked.jpg"
  [ -s "$work/pcb/stacked.jpg" ] || fail "the pcb stack wrote no $work/pcb/stacked.jpg"
else
  step "skipped the real-photo stack: no ../shared/stacks/pcb next to the checkout"
fi

step "OK: the built package installs and runs"
