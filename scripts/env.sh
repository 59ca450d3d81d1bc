# Shared by run.sh and test.sh: make .venv with Python >= 3.11 and install Chronolog
# with the given extras. Installs only when pyproject.toml changed or an extra is missing.

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Chronolog needs Python 3.11 or newer; install it (Debian 12: apt-get install python3)" >&2
    return 1
}

make_venv() {
    local python
    python=$(find_python)
    [ -x .venv/bin/python ] && return 0
    if ! "$python" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        # Debian ships venv support separately.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "installing python3-venv (Debian keeps venv support in its own package)" >&2
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv .venv
        else
            echo "error: '$python -m venv' failed; install venv support: sudo apt-get install python3-venv" >&2
            return 1
        fi
    fi
}

install_chronolog() {
    # One environment for run.sh and test.sh: the stamp records the pyproject.toml hash and
    # every extra installed for it, so run.sh after test.sh ("[dev]" covers "") installs
    # nothing, and test.sh after run.sh installs once. A changed pyproject.toml starts over.
    local stamp=.venv/.chronolog-installed hash current=no installed="" union
    make_venv
    hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ "$(cut -d' ' -f1 "$stamp" 2>/dev/null)" = "$hash" ]; then
        current=yes
        installed=$(extras_of "$(cut -d' ' -f2- -s "$stamp")")
    fi
    union=$(extras_of "$installed $1")
    [ "$current" = yes ] && [ "$union" = "$installed" ] && return 0
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${union:+[${union// /,}]}"
    echo "$hash $union" > "$stamp"
}

extras_of() {
    # "[dev]" or "dev test" or "[dev] test" -> "dev test": sorted, unique, no brackets.
    # "dev" includes "test", so it stands for both.
    local words
    words=$(echo "$*" | tr '[],' '   ')
    if [[ " $words " == *" dev "* ]]; then
        words="$words test"
    fi
    echo $words | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

ensure_debian_packages() {
    # Real services for the adapter tests (tests/services/); installed once.
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} for the tests" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: the tests need ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
}
