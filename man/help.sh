#!/bin/sh
# man/help.sh PROGRAM ARG...: runs PROGRAM ARG... for help2man (mk/man.am),
# turning the further synopses of a --help ("       cmr-model info FILE",
# indented under the "Usage:" line) into help2man's "  or:  cmr-model info
# FILE", so that each becomes a line of the page's SYNOPSIS.
prog=$1
shift
"$prog" "$@" | awk -v name="${prog##*/}" '
    NR == 1 { syn = /^Usage: / }
    NR > 1 && syn && $1 == name { sub(/^[ \t]+/, "  or:  "); print; next }
    NR > 1 { syn = 0 }
    { print }'
