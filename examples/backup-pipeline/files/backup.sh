#!/usr/bin/env bash
# Backs up a folder as a gzip tar with a .sha256 beside it, verifies what it wrote, and keeps
# the newest N archives.
#
#   backup.sh -s SOURCE -d DEST [-k KEEP] [-j|--json]
#     -s SOURCE  folder to back up
#     -d DEST    folder for the archives
#     -k KEEP    how many archives to keep (default 7)
#     -j         log JSON lines instead of text (also --json)
#
# Exits non-zero if anything fails, a written archive's checksum included.
set -euo pipefail

source_dir=""
dest_dir=""
keep=7
json=0

log() {
    local level=$1; shift
    if [ "$json" = 1 ]; then
        printf '{"time":"%s","level":"%s","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$level" "$*"
    else
        printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$level" "$*"
    fi
}

usage() {
    sed -n '4,9p' "$0" >&2
    exit 2
}

# getopts reads short options only: --json is -j.
args=()
for arg in "$@"; do
    case "$arg" in
        --json) args+=(-j) ;;
        --help) args+=(-h) ;;
        *) args+=("$arg") ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"

while getopts ":s:d:k:jh" opt; do
    case "$opt" in
        s) source_dir=$OPTARG ;;
        d) dest_dir=$OPTARG ;;
        k) keep=$OPTARG ;;
        j) json=1 ;;
        h) usage ;;
        :) log error "option -$OPTARG needs a value"; usage ;;
        *) log error "unknown option -$OPTARG"; usage ;;
    esac
done
[ -n "$source_dir" ] && [ -n "$dest_dir" ] || usage
case "$keep" in ''|*[!0-9]*) log error "-k needs a number, not $keep"; exit 2 ;; esac
[ "$keep" -ge 1 ] || { log error "-k must be at least 1"; exit 2; }
[ -d "$source_dir" ] || { log error "source $source_dir is not a folder"; exit 1; }
mkdir -p "$dest_dir"

name="backup-$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
tmp=$(mktemp "$dest_dir/.${name}.XXXXXX")
trap 'rm -f "$tmp" "$tmp.sha256"' EXIT

log info "archiving $source_dir to $dest_dir/$name"
tar -C "$source_dir" -czf "$tmp" .
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
printf '%s  %s\n' "$sum" "$name" > "$tmp.sha256"

# Verify what was written before it counts as a backup.
if [ "$(sha256sum "$tmp" | cut -d' ' -f1)" != "$sum" ] || ! gzip -t "$tmp"; then
    log error "verification of $name failed"
    exit 3
fi
mv -f "$tmp.sha256" "$dest_dir/$name.sha256"
mv -f "$tmp" "$dest_dir/$name"
trap - EXIT
log info "wrote $name ($(stat -c %s "$dest_dir/$name") bytes, sha256 $sum)"

# Retention: keep the newest N archives (names sort by time).
mapfile -t archives < <(find "$dest_dir" -maxdepth 1 -name 'backup-*.tar.gz' -printf '%f\n' | sort)
excess=$(( ${#archives[@]} - keep ))
for (( i = 0; i < excess; i++ )); do
    rm -f "$dest_dir/${archives[$i]}" "$dest_dir/${archives[$i]}.sha256"
    log info "removed old archive ${archives[$i]}"
done
