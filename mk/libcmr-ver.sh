#!/bin/sh
# mk/libcmr-ver.sh CPP INCDIR SOVERSION VERSION HEADER...: libcmr's GNU ld
# version script, on stdout (mk/lib.am). HEADERs are named relative to
# INCDIR (lib/). The functions that the HEADERs themselves declare (after
# the preprocessor: no comments, no macros; not what they include from other
# headers) get the node CMR_<SOVERSION>, the public API; every other cmr_
# symbol gets CMR_PRIVATE_<VERSION>, for cmr's own programs; everything else
# is local.
set -eu
cpp=$1 inc=$2 so=$3 version=$4
shift 4
api=" $* "
# shellcheck disable=SC2086
syms=$(for h in "$@"; do printf '#include "%s"\n' "$h"; done | $cpp -I"$inc" - |
    awk -v inc="$inc/" -v api="$api" '
        /^# [0-9]+ "/ { f = $3; gsub(/"/, "", f)
                        if (index(f, inc) == 1) f = substr(f, length(inc) + 1)
                        keep = index(api, " " f " ") > 0; next }
        keep' |
    grep -oE '(^|[^A-Za-z0-9_])cmr_[A-Za-z0-9_]+[[:space:]]*\(' |
    sed -e 's/^[^c]*//' -e 's/[[:space:](]*$//' | sort -u)
[ -n "$syms" ] || { echo "mk/libcmr-ver.sh: no function declared in $*" >&2; exit 1; }
printf '/* made by mk/libcmr-ver.sh from the public headers */\nCMR_%s {\nglobal:\n' "$so"
for s in $syms; do printf '\t%s;\n' "$s"; done
printf 'local:\n\t*;\n};\n\nCMR_PRIVATE_%s {\nglobal:\n\tcmr_*;\n} CMR_%s;\n' "$version" "$so"
