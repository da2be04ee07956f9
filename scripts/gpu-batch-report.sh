#!/usr/bin/env bash
# gpu-batch-report.sh - issue 16's numbers, on the GPU machine, in one call.
#
#   scripts/gpu-batch-report.sh [STEP...]
#
# Run from the repository root on the GPU machine, after unpacking the
# bundle (scripts/gpu-bundle.sh and scripts/gpu-pack.sh here; there
# `tar -xJf dist/pack.tar.xz -C dist`). Steps, in this order (default:
# all of them; each prints its wall time, so a session can split them
# across calls of at most 10 minutes):
#
#   ops      test_gpu_ops: every type's batched mat-vec against its
#            single-row products, bit for bit (must pass before anything
#            below is worth timing)
#   kernels  bench_kernels --batch: batched vs one-by-one per type and shape
#   batch    bench --batch 1,2,4,8,16,32 -p 128 -n 128 on synth llama2-7b
#            in q4_0, q8_0, q4_K and q4_K_M (TYPES overrides the list)
#   load     scripts/loadtest.py on the q4_0 model: 1, 8 and 32 streaming
#            clients (--parallel = clients, at most 8 when CLIENTS_MAX=8)
#   long     (not in the default list) issue 16's load goal: 8 and 32
#            clients of one 512-token completion each (8-word prompts,
#            --parallel = clients, -c 1024), on two CUDA streams and with
#            serve --one-stream, beside bench --batch 8,32 -p 16 -n 512
#   crossover  prompt t/s of one sequence through each product path
#            (--prompt-gemv, --prompt-gemm) at -p 32, 64, 128 and 256,
#            per type: where dequantize + GEMM overtakes the mat-vec
#   shapes   (not in the default list) bench --batch 2,4,8,16,32 on
#            q4_0 and q8_0 with the repacked kernels' 8-row and 16-row
#            shapes forced (--batch-rows-8, --batch-rows-16), in turns
#   profile  (not in the default list) one decode step of 8 sequences of
#            the q4_0 model kernel by kernel (ncu's durations of a run
#            without graphs, summed by scripts/ncu-step.py), then the same
#            step's time through its CUDA graph (bench --batch 8)
#   ncu      (not in the default list) Nsight Compute's speed-of-light,
#            warp-state, occupancy and memory sections (L1 hits, L2 reads:
#            how much of x comes from where) of one launch of each 8-input
#            kernel of issue 16's goal (Q4_0, Q8_0 repacked, 8 and 16 rows
#            a block; Q4_K; and Q6_K (repacked), the output matrix), from
#            bench_kernels --batch's 7B qkv shape; ncu stops the program
#            after that launch
#   stalls   (not in the default list) where the 8-input Q4_0 kernel
#            (8 rows a block) waits: ncu's warp-state sampling per SASS
#            instruction, the 25 instructions with the most samples and
#            the stall reasons summed over the kernel (the whole table in
#            $OUT/stalls-q4_0r8_nb8.csv)
#
# Output goes to stdout and, when $OUT is set (the device tool's folder),
# to $OUT/batch-report.txt too. Models are written to $MODELS (default
# /tmp/m40-models) once and reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bundle=$root/dist/gpu
bin=$bundle/m40-llm
models=${MODELS:-/tmp/m40-models}
types=${TYPES:-q4_0 q8_0 q4_K q4_K_M}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(ops kernels batch load crossover)
[ -x "$bin" ] || { echo "gpu-batch-report: no $bin (unpack the bundle first)" >&2; exit 1; }
mkdir -p "$models"
if [ -n "${OUT:-}" ]; then
    exec > >(tee -a "$OUT/batch-report.txt") 2>&1
fi
export LD_LIBRARY_PATH=$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# model TYPE: the synth llama2-7b of TYPE, written once
model() {
    local f=$models/7b-$1.gguf
    [ -s "$f" ] || "$bin" synth --shape llama2-7b --type "$1" -o "$f" >/dev/null
    echo "$f"
}

run_step() {
    local t0=$SECONDS
    echo "== $1 ($(date -u +%H:%M:%S))"
    case $1 in
        ops) (cd "$bundle" && M40_TEST_ONLY=test_gpu_ops ./run-tests.sh) ;;
        kernels) "$bundle/bin/bench_kernels" --batch ;;
        batch)
            for t in $types; do
                echo "-- $t"
                "$bin" bench -m "$(model "$t")" --device cuda --batch 1,2,4,8,16,32 -p 128 -n 128 -r 1
            done
            ;;
        load)
            local m
            m=$(model q4_0)
            echo "-- bench's tg beside them (one stream, past 128 tokens of context)"
            "$bin" bench -m "$m" --device cuda -p 0 -n 128 -d 128 -r 2
            for c in 1 8 32; do
                local p=$c
                [ -n "${CLIENTS_MAX:-}" ] && [ "$p" -gt "$CLIENTS_MAX" ] && p=$CLIENTS_MAX
                echo "-- $c clients, --parallel $p"
                python3 "$root/scripts/loadtest.py" --bin "$bin" --model "$m" --clients "$c" \
                    --requests 2 --max-tokens 128 --server-args "--parallel $p -c 512"
            done
            ;;
        long)
            local m c s
            m=$(model q4_0)
            for s in "" "--one-stream"; do
                for c in 8 32; do
                    echo "-- $c clients, 512 tokens each, --parallel $c ${s:-(two streams)}"
                    python3 "$root/scripts/loadtest.py" --bin "$bin" --model "$m" --clients "$c" \
                        --requests 1 --max-tokens 512 --prompt-words 8 \
                        --server-args "--parallel $c -c 1024 $s"
                done
            done
            echo "-- bench at the same counts"
            "$bin" bench -m "$m" --device cuda --batch 8,32 -p 16 -n 512 -r 1
            ;;
        stalls)
            local csv=${OUT:-/tmp}/stalls-q4_0r8_nb8.csv rep=${OUT:-/tmp}/stalls-q4_0r8_nb8
            ncu --clock-control none --kill on --launch-skip 5 --launch-count 1 \
                -k "regex:^m40_gemvb_q4_0r8_nb8\$" --section WarpStateStats \
                --section SourceCounters -f -o "$rep" "$bundle/bin/bench_kernels" --batch \
                >/dev/null 2>&1 || true
            ncu --import "$rep.ncu-rep" --page source --csv --print-source sass >"$csv" 2>&1 || true
            python3 "$root/scripts/ncu-stalls.py" "$csv" || head -5 "$csv"
            ;;
        crossover)
            for t in $types; do
                local m p path
                m=$(model "$t")
                for path in gemv gemm; do
                    for p in 32 64 128 256; do
                        printf -- '-- %s --prompt-%s -p %s: ' "$t" "$path" "$p"
                        "$bin" bench -m "$m" --device cuda -p "$p" -n 0 -r 2 --prompt-$path --json 2>/dev/null |
                            python3 -c 'import json, sys; print(" ".join("%.1f t/s" % json.loads(l)["tps_mean"] for l in sys.stdin if l.strip()))'
                    done
                done
            done
            ;;
        shapes)
            for t in q4_0 q8_0; do
                for r in 8 16; do
                    echo "-- $t --batch-rows-$r"
                    "$bin" bench -m "$(model "$t")" --device cuda --batch 2,4,8,16,32 -p 128 \
                        -n 128 -r 1 --batch-rows-$r
                done
            done
            ;;
        profile)
            # -p 1: 8 one-token prompts (8 forwards of ~355 launches) after
            # the load's ~130 repacks, then the warm-up run's decode steps
            local m csv=${OUT:-/tmp}/step8.csv
            m=$(model q4_0)
            ncu --clock-control none --cache-control none --csv \
                --metrics gpu__time_duration.sum,launch__grid_size --launch-skip 2970 \
                --launch-count 4000 "$bin" bench -m "$m" --device cuda --batch 8 -p 1 -n 6 \
                -r 1 --no-graphs >"$csv" 2>&1 || true
            python3 "$root/scripts/ncu-step.py" "$csv" --inputs 8 || tail -5 "$csv"
            echo "-- the same step through its graph"
            "$bin" bench -m "$m" --device cuda --batch 8 -p 1 -n 64 -r 1
            ;;
        ncu)
            # kernel:launches to skip (bench_kernels times each input count
            # in 4 replays of a graph of 20)
            local kk k
            for kk in q4_0r8_nb8:5 q4_0r16_nb8:5 q8_0r8_nb8:5 q8_0r16_nb8:5 q4_k_nb8:5 \
                q6_kr8_nb8:5; do
                k=${kk%%:*}
                echo "-- m40_gemvb_$k"
                ncu --clock-control none --kill on --launch-skip "${kk#*:}" --launch-count 1 \
                    -k "regex:^m40_gemvb_${k}\$" --section SpeedOfLight --section WarpStateStats \
                    --section Occupancy --section MemoryWorkloadAnalysis \
                    "$bundle/bin/bench_kernels" --batch 2>&1 |
                    grep -vE '^\| |^## |^$' || true
            done
            ;;
        *) echo "gpu-batch-report: unknown step $1 (ops kernels batch load long crossover shapes profile ncu stalls)" >&2 && return 2 ;;
    esac
    echo "== $1 took $((SECONDS - t0)) s"
}

for s in "${steps[@]}"; do
    run_step "$s"
done
