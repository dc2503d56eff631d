#!/bin/sh
# Builds the profiling plugin by hand: tools/profile-plugin/build.sh [OUT.so]
# (`tally profile` does the same, into build/profile/, whenever the source is newer).
set -eu
here=$(dirname "$0")
out=${1:-build/profile/tally-profile.so}
mkdir -p "$(dirname "$out")"
exec "${CC:-cc}" -O2 -std=c11 -Wall -Wextra -shared -fPIC -fvisibility=hidden \
    -o "$out" "$here/tally-profile.c"
