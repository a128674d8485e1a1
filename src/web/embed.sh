#!/bin/sh
# src/web/embed.sh FILE... — the web assets (src/web/assets/*) as C arrays,
# so that the library serves them without any file of its own at run time.
# For assets/report.css: const char sc_asset_report_css[] (NUL-terminated)
# and const size_t sc_asset_report_css_len.  Run by the Makefile.
set -e
echo '/* generated from src/web/assets/ by src/web/embed.sh; do not edit */'
echo '#include <stddef.h>'
for f in "$@"; do
    name=sc_asset_$(basename "$f" | tr '.-' '__')
    echo "const char $name[] = {"
    od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
    echo "0};"
    echo "const size_t ${name}_len = $(wc -c < "$f");"
done
