#!/bin/bash
# Check every shell file of the repository: "bash -n" (or "sh -n" for
# POSIX scripts) and shellcheck. Run by "tox -e pep8".
#
# Shell files are found among the files git tracks: everything under
# devstack/ (but the package lists in devstack/files/), *.sh, .ci/run, and
# any file whose first line is a sh/bash shebang, so new scripts are picked
# up without editing this list.
#
# Usage: tools/check-shell.sh [FILE...]   (default: every shell file)
# Exits non-zero when any file has a finding, naming each such file.

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP_DIR"

# dialect FILE: "bash", "sh" or "" (not a shell file).
dialect() {
    local file=$1 first
    first=$(head -c 200 "$file" 2>/dev/null | head -n 1 || true)
    case "$first" in
        '#!'*bash*) echo bash; return ;;
        '#!'*/sh|'#!'*/sh' '*|'#!'*'env sh'*|'#!'*dash*) echo sh; return ;;
    esac
    case "$file" in
        devstack/files/*) echo "" ;;
        # devstack sources these; they are bash without a shebang.
        devstack/*) echo bash ;;
        *.sh|.ci/run) echo bash ;;
        *) echo "" ;;
    esac
}

list_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files
    else
        find . -path ./.git -prune -o -path ./.venv -prune -o -path ./.tox \
            -prune -o -type f -print | sed 's|^\./||'
    fi
}

if ! command -v shellcheck >/dev/null 2>&1; then
    echo "check-shell: shellcheck is not installed (apt-get install shellcheck)" >&2
    exit 2
fi

files=()
if [ $# -gt 0 ]; then
    files=("$@")
else
    while IFS= read -r file; do
        [ -f "$file" ] && [ -n "$(dialect "$file")" ] && files+=("$file")
    done < <(list_files)
fi

failed=()
for file in "${files[@]}"; do
    kind=$(dialect "$file")
    kind=${kind:-bash}
    if [ "$kind" = sh ]; then
        syntax=(sh -n "$file")
    else
        syntax=(bash -n "$file")
    fi
    if ! "${syntax[@]}"; then
        echo "check-shell: ${syntax[0]} -n found errors in $file" >&2
        failed+=("$file")
        continue
    fi
    # -x follows "source" lines (with "# shellcheck source=" hints). A
    # file without a shebang is told its dialect; one with a shebang is
    # read the way its shebang says.
    dialect_opt=()
    [ "$(head -c 2 "$file")" = '#!' ] || dialect_opt=(--shell="$kind")
    if ! shellcheck -x "${dialect_opt[@]}" "$file"; then
        echo "check-shell: shellcheck found problems in $file" >&2
        failed+=("$file")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "check-shell: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "check-shell: ${#files[@]} shell files passed bash -n/sh -n and shellcheck"
