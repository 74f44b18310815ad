#!/usr/bin/env bash
# Checks every archive in a folder against the .sha256 beside it; exits non-zero naming any
# archive that does not match.
set -euo pipefail
dest_dir=${1:?usage: verify-backups.sh DEST}
status=0
cd "$dest_dir"
for sum in backup-*.tar.gz.sha256; do
    [ -e "$sum" ] || continue
    if ! sha256sum --quiet -c "$sum" >/dev/null 2>&1; then
        echo "checksum mismatch: ${sum%.sha256}" >&2
        status=1
    fi
done
exit $status
