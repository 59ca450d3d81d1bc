# Shared by run.sh and test.sh: make .venv with Python >= 3.11 and install Chronolog
# with the given extras. Re-installs only when pyproject.toml or the extras changed.

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
    local extras=$1 stamp=.venv/.chronolog-installed want
    make_venv
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$extras"
        echo "$want" > "$stamp"
    fi
}

ensure_debian_packages() {
    # Real services for the adapter tests (see ../shared/TESTING.md); installed once.
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
