#!/usr/bin/env bash
# run-tests.sh - the GPU suite, as packed by scripts/gpu-bundle.sh.
#
# Runs every tests/test_gpu_* and checks the CLI sees the GPU. Any failure
# and any skip ("skipped: ..." or exit 77) is a failure: this runner only
# passes on a machine where every GPU test really ran.
#
#   ./run-tests.sh              run the suite
#   ./run-tests.sh --sanitize   run each test under compute-sanitizer memcheck
#
# M40LLM_ENABLE_CUBLAS=0 runs the suite with cuBLAS off (the cuBLAS test
# then checks that it is off).
#
# A session's device calls are limited to 10 minutes each, so the suite can
# run in parts: M40_TEST_ONLY="test_gpu_ops info" runs only the named checks
# (test names, "info", "perplexity", "gemma3"), and M40_TEST_SHAPES=REGEX
# keeps only the forward/engine models whose file name matches (e.g.
# "gemma|moe"). Each part says it is one; the whole suite is the union.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# The bundle ships the non-glibc libraries it links (gpu-bundle.sh).
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
sanitizer=()
if [ "${1:-}" = "--sanitize" ]; then
    cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    [ -x "$cs" ] || { echo "run-tests: compute-sanitizer not found" >&2; exit 1; }
    # API errors are not reported: every driver call's status is checked by
    # our code and the tests, and some tests provoke one on purpose (a
    # kernel name that does not exist). memcheck still catches every bad
    # device memory access and leak.
    sanitizer=("$cs" --tool memcheck --error-exitcode 99 --leak-check full --report-api-errors no)
fi
log=$(mktemp)
passed=0 failed=0
# wanted NAME: whether M40_TEST_ONLY (if set) names this check
wanted() { [ -z "${M40_TEST_ONLY:-}" ] || [[ " $M40_TEST_ONLY " == *" $1 "* ]]; }
[ -z "${M40_TEST_ONLY:-}${M40_TEST_SHAPES:-}" ] ||
    echo "run-tests: a part of the suite (M40_TEST_ONLY='${M40_TEST_ONLY:-}' M40_TEST_SHAPES='${M40_TEST_SHAPES:-}')"

run_one() { # run_one NAME COMMAND...
    local name=$1
    shift
    "$@" >"$log" 2>&1
    local rc=$?
    sed 's/^/    /' "$log"
    if [ $rc -ne 0 ] || grep -q '^skipped' "$log"; then
        echo "FAIL $name (exit $rc)"
        failed=$((failed + 1))
    else
        echo "ok   $name"
        passed=$((passed + 1))
    fi
}

# Models for the forward-pass parity test, made here by synth: every weight
# type on shapes small enough for the CPU reference (tiny: d=64; mini:
# d=256, so K-quant rows are whole blocks; the qwen shapes below).
models=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$models"' EXIT
forward_models=()
types="f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K"
# memcheck makes every kernel far slower: a few types cover every kernel
# family there (plain, repacked, every wide-load decoder).
[ ${#sanitizer[@]} -eq 0 ] || types="f16 q4_0 q8_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K"
for type in $types; do
    for shape in tiny mini; do
        "$here/bin/m40-llm" synth --shape $shape --type $type --seed 7 -o "$models/$shape-$type.gguf" >/dev/null
        forward_models+=("$models/$shape-$type.gguf")
    done
done
# llama-quantize's Q4_K_M mix: Q4_K, with a Q6_K attn_v and ffn_down on
# mini's last layer and a Q6_K output (several types in one step)
"$here/bin/m40-llm" synth --shape mini --type q4_K_M --seed 7 -o "$models/mini-q4_K_M.gguf" >/dev/null
forward_models+=("$models/mini-q4_K_M.gguf")
# mini-qwen2: NeoX RoPE, biases; mini-qwen3: per-head q/k norms, heads
# wider than d / n_head
for qwen in qwen2 qwen3; do
    for type in f16 q4_0 q6_K; do
        "$here/bin/m40-llm" synth --shape mini-$qwen --type $type -o "$models/$qwen-$type.gguf" >/dev/null
        forward_models+=("$models/$qwen-$type.gguf")
    done
done
# mini-phi3: fused q|k|v and gate|up tensors; mini-qwen3-yarn: YaRN;
# mini-phi3-longrope: LongRoPE (its long factors: the tests' contexts of
# 128 and more pass its original 64), -swa with the 128k files' window;
# mini-gemma3: sliding layers (window 6, their own RoPE base), head norms,
# post-norms, GELU gate, embeddings times sqrt(d), -scaled with linear RoPE
# scaling on the global layers; mini-gemma2: soft-caps;
# mini-qwen3moe, mini-mixtral: mixtures of experts
for shape in phi3 qwen3-yarn phi3-longrope phi3-longrope-swa gemma3 gemma3-scaled gemma2 qwen3moe mixtral; do
    for type in f16 q4_0; do
        "$here/bin/m40-llm" synth --shape mini-$shape --type $type -o "$models/$shape-$type.gguf" >/dev/null
        forward_models+=("$models/$shape-$type.gguf")
    done
done
# Extra models given by the caller (e.g. the default model): M40_TEST_MODELS="a.gguf b.gguf"
for extra in ${M40_TEST_MODELS:-}; do
    forward_models+=("$extra")
done

if [ -n "${M40_TEST_SHAPES:-}" ]; then
    kept=()
    for f in "${forward_models[@]}"; do
        [[ "$(basename "$f")" =~ $M40_TEST_SHAPES ]] && kept+=("$f")
    done
    forward_models=("${kept[@]}")
    echo "run-tests: ${#forward_models[@]} forward models match '$M40_TEST_SHAPES'"
fi

for t in "$here"/tests/test_gpu_*; do
    name=$(basename "$t")
    wanted "$name" || continue
    if [ "$name" = test_gpu_forward ] || [ "$name" = test_gpu_engine ]; then
        run_one "$name" "${sanitizer[@]}" "$t" "${forward_models[@]}"
    else
        run_one "$name" "${sanitizer[@]}" "$t"
    fi
done

# The CLI must find the device, load its kernels and report cuBLAS.
cli_check() {
    local out
    out=$("$here/bin/m40-llm" info --device cuda) || return 1
    echo "$out"
    grep -q '^selected: GPU' <<<"$out" || return 1
    if [ "${M40LLM_ENABLE_CUBLAS:-}" = "0" ]; then
        grep -q '^cuBLAS: off (disabled by M40LLM_ENABLE_CUBLAS=0)' <<<"$out"
    else
        grep -q '^cuBLAS: loaded' <<<"$out"
    fi
}
wanted info && run_one "m40-llm info --device cuda" cli_check

# Perplexity on the GPU equals the CPU's to 4 significant digits (issue
# 17): a mini model of a 4-bit and a K-quant type, 4 windows of 64.
ppl_of() { # ppl_of MODEL DEVICE: the final estimate's value
    "$here/bin/m40-llm" perplexity -m "$1" -f "$models/text.txt" -c 64 --chunks 4 --device "$2" |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p'
}
ppl_check() {
    for i in $(seq 1 200); do printf 'word%d and the next one %d. ' $((i % 37)) $((i % 11)); done >"$models/text.txt"
    local m cpu gpu
    for m in "$models/mini-q4_0.gguf" "$models/mini-q4_K.gguf"; do
        cpu=$(ppl_of "$m" cpu) && gpu=$(ppl_of "$m" cuda) || return 1
        echo "$(basename "$m"): CPU $cpu, CUDA $gpu"
        python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if a > 1 and abs(a - b) <= 5e-4 * a else 1)" "$cpu" "$gpu" || return 1
    done
}
wanted perplexity && run_one "perplexity: CUDA equals CPU to 4 digits" ppl_check

# Gemma 3 270M (issue 17: greedy equal to transformers' on CUDA too), when
# the caller brought the file (241 MiB: carried in pieces and joined; see
# CONTRIBUTING.md): M40_TEST_GEMMA3=/path/gemma-3-270m-q4_k_m.gguf
if [ -n "${M40_TEST_GEMMA3:-}" ] && wanted gemma3; then
    run_one "Gemma 3 270M greedy on CUDA" "${sanitizer[@]}" "$here/bin/real_greedy" \
        "$here/gemma3-270m.json" "$M40_TEST_GEMMA3" cuda
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
