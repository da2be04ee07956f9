#!/usr/bin/env bash
# test_kv_quality.sh BINARY MODEL TEXT - a q8_0 KV cache costs the default
# model less than 0.5% of perplexity against the f16 cache (issue 18's
# bound), on six 512-token windows of real text (the GPL 3.0, which may be
# copied verbatim). The full text's numbers: docs/long-context.md.
set -u
bin=$1 model=$2 text=$3
. "$(dirname "$0")/lib.sh"

ppl() { sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p' "$tmp/out"; }
expect 0 perplexity -m "$model" -f "$text" -c 512 --chunks 6 --device cpu -t 2 --cache-type f16
f16=$(ppl)
expect 0 perplexity -m "$model" -f "$text" -c 512 --chunks 6 --device cpu -t 2 --cache-type q8_0
q8=$(ppl)
echo "PPL f16 $f16, q8_0 $q8"
if [ -n "$f16" ] && [ -n "$q8" ] &&
    awk -v a="$f16" -v b="$q8" 'BEGIN { d = (b - a) / a; exit !(d < 0.005 && d > -0.005) }'; then
    ok
else
    bad "q8_0 KV perplexity $q8 is not within 0.5% of f16's $f16"
fi
finish
