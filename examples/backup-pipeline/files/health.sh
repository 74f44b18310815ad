#!/usr/bin/env bash
# Writes the backup pipeline's health: the timer's state, recent errors in the service's
# journal, disk and memory, and the last backup's time, as a JSON report and as a
# node-exporter textfile metric. Both files are replaced atomically.
#
#   health.sh -d DEST [-r REPORT] [-m METRICS]
set -euo pipefail

dest=""
report=/var/lib/backup-health/health.json
metrics=/var/lib/node_exporter/textfile_collector/backup.prom
while getopts ":d:r:m:" opt; do
    case "$opt" in
        d) dest=$OPTARG ;;
        r) report=$OPTARG ;;
        m) metrics=$OPTARG ;;
        *) echo "usage: health.sh -d DEST [-r REPORT] [-m METRICS]" >&2; exit 2 ;;
    esac
done
[ -n "$dest" ] || { echo "usage: health.sh -d DEST [-r REPORT] [-m METRICS]" >&2; exit 2; }

timer=$(systemctl is-active backup.timer 2>/dev/null || true)
service_result=$(systemctl show backup.service -p Result --value 2>/dev/null || echo unknown)
errors=$(journalctl -u backup.service --since "-1h" -p err -q --no-pager 2>/dev/null | wc -l)
disk_used=$(df -P "$dest" | awk 'NR == 2 {gsub("%", "", $5); print $5}')
disk_free_bytes=$(df -P -k "$dest" | awk 'NR == 2 {print $4 * 1024}')
mem_available_bytes=$(awk '/^MemAvailable:/ {print $2 * 1024}' /proc/meminfo)
last=$(find "$dest" -maxdepth 1 -name 'backup-*.tar.gz' -printf '%T@\n' 2>/dev/null | sort -n | tail -1 | cut -d. -f1)
last=${last:-0}
now=$(date +%s)

write() {
    local path=$1 text=$2 tmp
    mkdir -p "$(dirname "$path")"
    tmp=$(mktemp "$(dirname "$path")/.$(basename "$path").XXXXXX")
    printf '%s\n' "$text" > "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$path"
}

write "$report" "$(printf '{"time": %s, "timer": "%s", "last_result": "%s", "errors_last_hour": %s, "disk_used_percent": %s, "disk_free_bytes": %s, "memory_available_bytes": %s, "last_backup": %s, "last_backup_age_seconds": %s}' \
    "$now" "$timer" "$service_result" "$errors" "$disk_used" "$disk_free_bytes" "$mem_available_bytes" "$last" "$(( last > 0 ? now - last : -1 ))")"

write "$metrics" "# HELP backup_last_success_timestamp_seconds When the newest archive was written.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds $last
# HELP backup_disk_used_ratio How full the backup destination's filesystem is.
# TYPE backup_disk_used_ratio gauge
backup_disk_used_ratio $(awk -v p="$disk_used" 'BEGIN {printf "%.2f", p / 100}')
# HELP backup_errors_last_hour Error lines in the backup service's journal in the last hour.
# TYPE backup_errors_last_hour gauge
backup_errors_last_hour $errors
# HELP backup_timer_active Whether the backup timer is active.
# TYPE backup_timer_active gauge
backup_timer_active $([ "$timer" = active ] && echo 1 || echo 0)"
